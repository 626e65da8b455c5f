#!/usr/bin/env python3
"""Set up and run the Data Store Service on this machine, or run its tests.

    python3 dev.py run     # web on http://localhost:5050 and a task worker; Ctrl-C stops both
    python3 dev.py test    # the test suite; extra arguments go to pytest

Both create the virtualenv .venv when it is missing and install the project into it (again
only when pyproject.toml changed), so they can be run again and again. Needs Python 3.11+ and
nothing else: without DATABASE_URL the service starts its own PostgreSQL, keeping its data
under the state folder (.state/, or DSS_STATE_DIR).
"""

import argparse
import contextlib
import hashlib
import os
import secrets
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
    commands.add_parser("test", help="set up and run the tests (extra arguments go to pytest)")
    args, extra = parser.parse_known_args()
    if args.command == "run" and extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")

    if not args.no_install:
        ensure_virtualenv()
    if Path(sys.prefix).resolve() != VENV_DIR.resolve():
        # Go on inside the virtualenv, where Django and the rest are installed.
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), __file__, "--no-install", *sys.argv[1:]])
    os.chdir(PROJECT_DIR)
    if args.command == "test":
        os.execv(sys.executable, [sys.executable, "-m", "pytest", *extra])
    run_service(args.host, args.port)


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


def run_service(host: str, port: int) -> None:
    """Prepare the database and storage, then run web and worker until Ctrl-C (or SIGTERM)."""
    from dotenv import load_dotenv

    load_dotenv(PROJECT_DIR / ".env")
    # A development run: DEBUG on (and so a development secret key) unless configured.
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dss.settings")

    import django

    django.setup()  # starts (or joins) the embedded PostgreSQL when DATABASE_URL is unset
    from django.conf import settings

    from dss.startup import check_services

    check_services()
    prepare_database()
    print(f"Serving http://localhost:{port}/ (admin: http://localhost:{port}/admin/)")
    print("Press Ctrl-C to stop the web server and the task worker.", flush=True)
    manage = [sys.executable, str(PROJECT_DIR / "manage.py")]
    code = supervise(
        {
            "web": [*manage, "runserver", f"{host}:{port}"],
            "worker": [*manage, "db_worker"],
        }
    )
    if not os.environ.get("DATABASE_URL"):
        from dss.embedded import forget_dead_processes

        forget_dead_processes(settings.STATE_DIR)
    sys.exit(code)


def prepare_database() -> None:
    """Migrate, create the cache table, and a local admin user and HAWK client on first run."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from api.models import HawkClient

    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
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


def supervise(commands: dict[str, list[str]]) -> int:
    """Run the commands side by side until one ends or we are told to stop; stop the rest.

    Each runs in its own process group, so that a stop reaches the processes it starts
    (runserver's reloader) and a terminal's Ctrl-C reaches them once, through us.
    """
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    # Installed before the children start, so that they begin with the default handlers
    # even when we were started with SIGINT ignored (a background job of a shell).
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    processes: dict[str, subprocess.Popen] = {}
    code = 0
    try:
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, start_new_session=True)
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

    The worker finishes its current task first. Processes that end without running their
    exit hooks are dropped from the embedded database's list of users by our caller.
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
