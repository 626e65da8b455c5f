#!/usr/bin/env python3
"""Set up and run the Data Store Service on this machine, or run its tests.

    python3 dev.py run     # web on http://localhost:5050 and a task worker; Ctrl-C stops both
    python3 dev.py test    # the test suite; extra arguments go to pytest

Both create the virtualenv .venv when it is missing and install the project into it (again
only when pyproject.toml changed), and the npm packages with npm ci (again only when
package-lock.json changed), so they can be run again and again. Needs Python 3.11+ and
nothing else: without DATABASE_URL the service starts its own PostgreSQL, keeping its data
under the state folder (.state/, or DSS_STATE_DIR). The first run writes a local .env
(git-ignored) with DEBUG=true and a generated SECRET_KEY, so that manage.py commands run with
nothing else set.
"""

import argparse
import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
VENV_DIR = PROJECT_DIR / ".venv"
VENV_PYTHON = VENV_DIR / "bin" / "python"
INSTALL_STAMP = VENV_DIR / ".installed-pyproject-sha256"
DEV_ADMIN_USER = "admin"
DEV_HAWK_CLIENT = "dev-client"
STOP_SECONDS = 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--no-install", action="store_true", help="use the virtualenv as it is (no pip)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="set up and run the web server and a task worker")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on")
    run.add_argument("--port", type=int, default=5050, help="port to listen on")
    run.add_argument(
        "--dev-accounts",
        action="store_true",
        help="create the admin user and the all-scopes HAWK client also on a DATABASE_URL "
        "database (they are created on the embedded one without asking)",
    )
    commands.add_parser("test", help="set up and run the tests (extra arguments go to pytest)")
    args, extra = parser.parse_known_args()
    if args.command == "run" and extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")

    if not args.no_install:
        ensure_virtualenv()
        ensure_frontend()
    if Path(sys.prefix).resolve() != VENV_DIR.resolve():
        # Go on inside the virtualenv, where Django and the rest are installed.
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), __file__, "--no-install", *sys.argv[1:]])
    os.chdir(PROJECT_DIR)
    if args.command == "test":
        os.execv(sys.executable, [sys.executable, "-m", "pytest", *extra])
    try:
        run_service(args.host, args.port, args.dev_accounts)
    except KeyboardInterrupt:  # Ctrl-C while starting: what was started is stopped at exit
        sys.exit(130)


def ensure_virtualenv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (runs under any python3 first)
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if not VENV_PYTHON.exists():
        print(f"Creating the virtualenv {VENV_DIR.name}/ ...", flush=True)
        venv.create(VENV_DIR, with_pip=True)
    wanted = hashlib.sha256((PROJECT_DIR / "pyproject.toml").read_bytes()).hexdigest()
    if INSTALL_STAMP.exists() and INSTALL_STAMP.read_text() == wanted:
        return
    print("Installing the project and its dependencies ...", flush=True)
    pip = [str(VENV_PYTHON), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "install", "--quiet", "-e", f"{PROJECT_DIR}[dev]"], check=True)
    INSTALL_STAMP.write_text(wanted)


def ensure_frontend() -> None:
    """Install the npm packages (GOV.UK Frontend for the pages; the OpenID Connect provider
    and axe-core for the browser tests) with ``npm ci``, again only when package-lock.json
    is newer than the installed tree. Without npm the pages have no styles and the browser
    tests are skipped; the rest works."""
    installed = PROJECT_DIR / "node_modules" / ".package-lock.json"
    lock = PROJECT_DIR / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    if not shutil.which("npm"):
        print("npm was not found: the pages will have no styles (install Node.js)", flush=True)
        return
    print("Installing the npm packages (npm ci) ...", flush=True)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PROJECT_DIR, check=True
    )


def run_service(host: str, port: int, dev_accounts: bool) -> None:
    """Prepare the database and storage, then run web and worker until Ctrl-C (or SIGTERM).

    The embedded database is started (or joined) once, here, and handed to web and worker.
    """
    from dotenv import load_dotenv

    from dss.environment import env_file

    write_local_env_file(env_file(PROJECT_DIR))
    load_dotenv(env_file(PROJECT_DIR))
    # A development run: DEBUG on (and so a development secret key) unless configured.
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dss.settings")
    # Stopped by Ctrl-C, SIGTERM or a closed terminal while it starts, even when started with
    # SIGINT ignored (a background job of a shell): what it started is stopped at exit.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: sys.exit(128 + signum))

    import django

    django.setup()  # starts (or joins) the embedded PostgreSQL when DATABASE_URL is unset
    from django.conf import settings

    from dss.run_children import hand_down
    from dss.startup import check_services

    check_services()
    embedded = settings.EMBEDDED_DATABASE
    prepare_database(create_accounts=embedded or dev_accounts)
    if not embedded and not dev_accounts:
        print(
            "DATABASE_URL is set: no local admin user or HAWK client is created "
            "(python3 dev.py run --dev-accounts creates them)"
        )
    print(f"Serving http://localhost:{port}/ (admin: http://localhost:{port}/admin/)")
    print("Press Ctrl-C to stop the web server and the task worker.", flush=True)
    variables, lifeline, _keep_open = hand_down(settings.DATABASE_URL if embedded else None)
    manage = [sys.executable, str(PROJECT_DIR / "manage.py")]
    code = supervise(
        {
            "web": [*manage, "runserver", f"{host}:{port}"],
            "worker": [*manage, "db_worker"],
        },
        {**os.environ, **variables},
        lifeline,
    )
    sys.exit(code)  # the embedded database stops as this process exits, unless still used


def write_local_env_file(path: Path) -> None:
    """On the first run, write a local settings file: DEBUG on and a generated secret key.

    Never replaces an existing file. Created whole or not at all (a temporary file linked
    into place), readable by its owner only.
    """
    if path.exists():
        return
    text = (
        "# Local development settings, written by the first `python3 dev.py run` "
        "(git-ignored).\n"
        "# Real environment variables win over this file; .env.example lists every setting.\n"
        "DEBUG=true\n"
        f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
    )
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        with contextlib.suppress(FileExistsError):  # another run wrote it first
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    print(f"Wrote {path} (DEBUG=true and a generated SECRET_KEY) for local development.")


def prepare_database(create_accounts: bool) -> None:
    """Migrate and create the cache table; with ``create_accounts``, a local admin user and
    an all-scopes HAWK client when they are missing (their password and key printed once)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from api.models import HawkClient

    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
    if not create_accounts:
        return
    users = get_user_model()
    if not users.objects.filter(username=DEV_ADMIN_USER).exists():
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser(DEV_ADMIN_USER, "", password)
        print(
            f"Created the admin user {DEV_ADMIN_USER!r} with password {password} "
            f"(shown only now; change it with: manage.py changepassword {DEV_ADMIN_USER})"
        )
    if not HawkClient.objects.filter(id=DEV_HAWK_CLIENT).exists():
        key = secrets.token_urlsafe(32)
        HawkClient.objects.create(
            id=DEV_HAWK_CLIENT, key=key, scopes=["*"], description="local development client"
        )
        print(
            f"Created the HAWK client {DEV_HAWK_CLIENT!r} with all scopes; its key is {key} "
            "(shown only now)"
        )


def supervise(commands: dict[str, list[str]], environment: dict[str, str], lifeline: int) -> int:
    """Run the commands side by side until one ends or we are told to stop; stop the rest.

    Each runs in its own process group, so that a stop reaches the processes it starts
    (runserver's reloader) and a terminal's Ctrl-C reaches them once, through us. Each gets
    ``lifeline`` (a pipe's read end) so that it ends when we end, even when we are killed.
    """
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    # Installed before the children start, so that they begin with the default handlers
    # even when we were started with SIGINT ignored (a background job of a shell).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    processes: dict[str, subprocess.Popen] = {}
    code = 0
    try:
        for name, command in commands.items():
            processes[name] = subprocess.Popen(
                command, env=environment, pass_fds=(lifeline,), start_new_session=True
            )
        while not stopping:
            ended = {name: process.poll() for name, process in processes.items()}
            ended = {name: returned for name, returned in ended.items() if returned is not None}
            if ended:
                name, code = next(iter(ended.items()))
                print(f"The {name} process ended (exit code {code}); stopping.", flush=True)
                break
            time.sleep(0.2)
    finally:
        # Whatever happened to us (even a closed output), the children do not outlive us.
        stop_all(list(processes.values()))
    return code


def stop_all(processes: list[subprocess.Popen]) -> None:
    """Ask each process group to stop (SIGTERM); kill what still runs after a while.

    The worker finishes its current task first.
    """
    with contextlib.suppress(OSError):
        print("Stopping the web server and the task worker ...", flush=True)
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        wait_until_group_is_gone(process.pid)


def wait_until_group_is_gone(group: int) -> None:
    """Wait (briefly) for the rest of a process group, e.g. runserver's reloaded child."""
    for _ in range(50):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


if __name__ == "__main__":
    main()
