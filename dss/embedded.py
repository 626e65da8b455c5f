"""The embedded PostgreSQL server used when DATABASE_URL is not set.

The server's data lives in ``<DSS_STATE_DIR>/postgres``; it runs the PostgreSQL binaries that
the ``pgserver`` package bundles, listening only on a Unix socket. Every process of the service
(web server, task worker, any management command) shares one server: the first starts it,
the others join it, and the last one to exit stops it.

Nothing here depends on a process saying goodbye, so a process killed at any moment (or the
server itself, as in a power cut) never stops the next start:

- Each process using the server holds a shared ``flock`` on ``postgres-users.lock`` for its
  lifetime. The kernel drops the lock when the process ends, however it ends, so the lock *is*
  the list of users: a process that can take it exclusively is the last one.
- Starting (and stopping) happens under an exclusive lock on ``postgres-start.lock``; what is
  running is read from the server's own ``postmaster.pid`` and the live processes, never from
  a list of our own. A server left by a crashed run is joined when it is ready, waited for
  when it is starting or stopping, and started again when it is gone.
- A new data folder is made by ``initdb`` in a temporary folder and renamed into place, so
  ``postgres/`` is either absent or whole.

As root, the server runs as the system user ``pgserver`` (created when missing), as pgserver
itself does; PostgreSQL refuses to run as root.
"""

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import psutil

logger = logging.getLogger(__name__)

DATABASE = "postgres"
SERVER_USER = "pgserver"  # the system user that runs the server when we are root
START_SECONDS = 120  # how long a start waits for a server that is starting, stopping, recovering
STOP_SECONDS = 60
SOCKET_NAME = ".s.PGSQL.5432"
SOCKET_PATH_MAX = 107  # sun_path's length on Linux, less the final NUL
INIT_PREFIX = "postgres.init-"
UNREADABLE_PID_FILE_SECONDS = 10

# The shared lock this process holds on the users file while it uses the server.
_users_lock: int | None = None


@dataclass(frozen=True)
class StateFolder:
    """Where the embedded server keeps its data and its locks."""

    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres"

    @property
    def log(self) -> Path:
        return self.pgdata / "log"

    @property
    def users_lock(self) -> Path:
        return self.root / "postgres-users.lock"

    @property
    def start_lock(self) -> Path:
        return self.root / "postgres-start.lock"


@dataclass(frozen=True)
class Postmaster:
    """The lines of ``postmaster.pid`` that tell whether and where a server runs."""

    pid: int
    socket_dir: str
    status: str  # "starting", "ready", "stopping", or "" while the server writes the file

    def url(self) -> str:
        return f"postgres://postgres@/{DATABASE}?host={quote(self.socket_dir, safe='/')}"


class EmbeddedServerError(Exception):
    """The embedded server did not start; the message says what PostgreSQL reported."""


def embedded_database_url(state_dir: Path) -> str:
    """Start (or join) the embedded server keeping its data in ``state_dir/postgres``.

    Returns its connection URL (a Unix socket). This process counts as one of the server's
    users until it exits; the last user to exit stops the server. Exits with one line naming
    DSS_STATE_DIR when the folder cannot be used or the server does not start.
    """
    global _users_lock
    state = StateFolder(state_dir)
    try:
        state.root.mkdir(parents=True, exist_ok=True)
        users = _open_lock(state.users_lock)
        # Blocks while a last user stops the server, so that we start it again afterwards.
        fcntl.flock(users, fcntl.LOCK_SH)
    except OSError as error:
        raise SystemExit(
            f"DSS_STATE_DIR={state_dir}: cannot write the state folder ({error.strerror})"
        ) from None
    if _users_lock is None:
        # Registered first, so that a start interrupted (Ctrl-C) stops what it started.
        atexit.register(leave, state_dir)
        forked = _ForkedUsers(state)
        os.register_at_fork(
            before=forked.before, after_in_parent=forked.in_parent, after_in_child=forked.in_child
        )
    else:
        os.close(_users_lock)
    _users_lock = users
    try:
        postmaster = ensure_running(state)
    except (OSError, EmbeddedServerError) as error:
        raise SystemExit(
            f"DSS_STATE_DIR={state_dir}: the embedded PostgreSQL server did not start "
            f"({_describe(error)}; its log is {state.log})"
        ) from None
    return postmaster.url()


def leave(state_dir: Path) -> None:
    """Stop using the server; stop it when no other process uses it."""
    global _users_lock
    if _users_lock is None:
        return
    users, _users_lock = _users_lock, None
    try:
        stop_if_unused(state_dir, users)
    finally:
        os.close(users)


class _ForkedUsers:
    """Gives a forked child (gunicorn's workers) a users lock of its own.

    A lock inherited through fork is shared with the parent: the parent ending would find
    itself alone and stop the server under the child. So before each fork the parent takes a
    second shared lock, which the child keeps and the parent lets go, with no moment in
    between where the child holds none.
    """

    def __init__(self, state: StateFolder) -> None:
        self.state = state
        self.for_child: int | None = None

    def before(self) -> None:
        if _users_lock is not None:
            self.for_child = _open_lock(self.state.users_lock)
            fcntl.flock(self.for_child, fcntl.LOCK_SH)

    def in_parent(self) -> None:
        if self.for_child is not None:
            os.close(self.for_child)
            self.for_child = None

    def in_child(self) -> None:
        global _users_lock
        if self.for_child is not None and _users_lock is not None:
            os.close(_users_lock)
            _users_lock, self.for_child = self.for_child, None


def stop_if_unused(state_dir: Path, users: int | None = None) -> bool:
    """Stop the server when no process holds the users lock (``users``: our own, if any).

    Returns whether this call stopped it (or found it stopped).
    """
    state = StateFolder(state_dir)
    own = users is not None
    if users is None:
        try:
            users = _open_lock(state.users_lock)
        except OSError:
            return False
    try:
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # someone else still uses it
        with _locked(state.start_lock):
            stop(state)
        return True
    finally:
        if not own:
            os.close(users)


def ensure_running(state: StateFolder) -> Postmaster:
    """Make sure that a server is running and ready on ``state``; return its postmaster.

    Raises EmbeddedServerError (with PostgreSQL's own words) when it does not get ready in
    START_SECONDS, OSError when the folder cannot be used.
    """
    with _locked(state.start_lock):
        if not (state.pgdata / "PG_VERSION").exists():
            initialise(state)
        deadline = time.monotonic() + START_SECONDS
        last_error = "the server did not get ready"
        while time.monotonic() < deadline:
            postmaster = read_postmaster(state)
            if postmaster is not None:
                if postmaster.status == "ready":
                    return postmaster
                time.sleep(0.1)  # starting, recovering or stopping: see how it ends
                continue
            try:
                start(state)
            except EmbeddedServerError as error:
                # E.g. the backends of a killed server still hold its shared memory for a
                # moment; PostgreSQL refuses to start until they are gone.
                last_error = str(error)
                time.sleep(0.5)
        raise EmbeddedServerError(last_error)


def read_postmaster(state: StateFolder) -> Postmaster | None:
    """The running server described by ``postmaster.pid``, or None when none runs.

    A file left by a server that is gone (killed, power cut) is removed when its process id now
    belongs to another process, which PostgreSQL would take for a running server.
    """
    pid_file = state.pgdata / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except FileNotFoundError:
        return None
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        if _age_seconds(pid_file) < UNREADABLE_PID_FILE_SECONDS:
            return Postmaster(0, "", "")  # being written by a server starting this instant
        pid_file.unlink(missing_ok=True)  # cut short by a power cut
        return None
    running = _server_process(pid, state.pgdata)
    if running is None:
        return None  # PostgreSQL replaces the stale file itself
    if running is False:
        pid_file.unlink(missing_ok=True)
        return None
    field = (lines + [""] * 8)[:8]
    return Postmaster(pid, field[4].strip(), field[7].strip())


def initialise(state: StateFolder) -> None:
    """Create the data folder: initdb in a temporary folder, renamed into place when whole."""
    for leftover in state.root.glob(INIT_PREFIX + "*"):
        shutil.rmtree(leftover, ignore_errors=True)  # from a start that was killed
    if state.pgdata.exists():
        # Holds no database that PostgreSQL could open (an initdb of an older version of this
        # module was cut short); kept aside rather than deleted.
        aside = state.root / f"postgres.incomplete-{time.strftime('%Y%m%d%H%M%S')}"
        state.pgdata.rename(aside)
        logger.warning("%s had no PG_VERSION; moved to %s", state.pgdata, aside)
    folder = state.root / f"{INIT_PREFIX}{uuid.uuid4().hex[:8]}"
    folder.mkdir(mode=0o700)
    _give_to_server_user(folder)
    _run_binary(
        "initdb",
        ["-D", str(folder), "--auth=trust", "--encoding=utf8", "-U", "postgres"],
        folder,
    )
    folder.rename(state.pgdata)


def start(state: StateFolder) -> None:
    """Start the server (pg_ctl start) listening only on a socket; raise when it fails."""
    socket_dir = _socket_dir(state.pgdata)
    _remove_stale_socket_lock(socket_dir / f"{SOCKET_NAME}.lock", state.pgdata)
    options = f"-c listen_addresses='' -k {shlex.quote(str(socket_dir))}"
    _run_binary(
        "pg_ctl",
        ["-D", str(state.pgdata), "-l", str(state.log), "-o", options, "-w", "-t", "60", "start"],
        state.pgdata,
    )


def stop(state: StateFolder) -> None:
    """Stop the server if it runs (fast shutdown: sessions are ended)."""
    postmaster = read_postmaster(state)
    if postmaster is None or not postmaster.pid:
        return
    try:
        _run_binary(
            "pg_ctl",
            ["-D", str(state.pgdata), "-m", "fast", "-w", "-t", str(STOP_SECONDS), "stop"],
            state.pgdata,
        )
    except EmbeddedServerError:
        # Already gone, or stuck: end it the way a power cut would; the next start recovers.
        with contextlib.suppress(psutil.Error):
            psutil.Process(postmaster.pid).kill()


def _remove_stale_socket_lock(lock: Path, pgdata: Path) -> None:
    """Remove the socket's lock file when it is not held by our server (called when none runs).

    PostgreSQL would refuse to start if the process id in it now belongs to another process.
    """
    try:
        pid = int(lock.read_text().split()[0])
    except FileNotFoundError:
        return
    except (IndexError, ValueError):
        pid = 0
    if not pid or _server_process(pid, pgdata) is not True:
        lock.unlink(missing_ok=True)


def _server_process(pid: int, pgdata: Path) -> bool | None:
    """True: ``pid`` is the server of ``pgdata``. None: no such process. False: another one."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        try:
            return Path(process.cwd()) == pgdata.resolve()  # the server works in its folder
        except psutil.AccessDenied:
            return process.name() == "postgres"
    except psutil.NoSuchProcess:
        return None


def _socket_dir(pgdata: Path) -> Path:
    """The data folder when a socket path in it is short enough, else a folder in /tmp."""
    if len(str(pgdata / SOCKET_NAME)) <= SOCKET_PATH_MAX:
        return pgdata
    digest = hashlib.sha256(str(pgdata.resolve()).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"dss-postgres-{digest}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        # Made by an earlier start, unless another user of this machine got there first.
        owner = _server_user_ids()[0] if os.geteuid() == 0 else os.geteuid()
        if folder.is_symlink() or folder.stat().st_uid != owner:
            raise EmbeddedServerError(f"{folder} belongs to another user") from None
    else:
        _give_to_server_user(folder)
    return folder


def _run_binary(name: str, arguments: list[str], folder: Path) -> None:
    """Run one of the bundled PostgreSQL programs on ``folder`` (a data folder).

    Raises EmbeddedServerError with the program's error.
    """
    user = SERVER_USER if os.geteuid() == 0 else None
    if user:
        _prepare_for_server_user()
        # Checked every time: a parent folder may have been closed to others meanwhile.
        _pgserver().ensure_prefix_permissions(folder)
    # Output to a file, not a pipe: the server that pg_ctl starts would keep a pipe open.
    with tempfile.TemporaryFile("w+") as output:
        result = subprocess.run(
            [str(_pgserver().POSTGRES_BIN_PATH / name), *arguments],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            user=user,
            cwd="/",
            check=False,
        )
        if result.returncode != 0:
            output.seek(0)
            lines = [line.strip() for line in output.read().splitlines() if line.strip()]
            errors = [line for line in lines if "error" in line.lower() or "FATAL" in line]
            raise EmbeddedServerError(f"{name}: {(errors or lines or ['failed'])[0]}")


@cache
def _prepare_for_server_user() -> None:
    """As root: the ``pgserver`` user exists and can reach and run the bundled programs."""
    pgserver = _pgserver()
    pgserver.ensure_user_exists(SERVER_USER)
    readable = 0o044
    pgserver.ensure_prefix_permissions(pgserver.POSTGRES_BIN_PATH)
    pgserver.ensure_folder_permissions(pgserver.POSTGRES_BIN_PATH, readable | 0o011)
    pgserver.ensure_folder_permissions(pgserver.POSTGRES_BIN_PATH.parent / "lib", readable)


def _give_to_server_user(folder: Path) -> None:
    if os.geteuid() != 0:
        return
    _pgserver().ensure_user_exists(SERVER_USER)
    _pgserver().ensure_prefix_permissions(folder)
    uid, gid = _server_user_ids()
    os.chown(folder, uid, gid)


@cache
def _pgserver() -> SimpleNamespace:
    """The parts of pgserver we use: its programs' folder and its helpers for running as root.

    Importing pgserver looks up a runtime folder that we do not use, and warns when
    XDG_RUNTIME_DIR is unset.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver import _commands, utils
    return SimpleNamespace(
        POSTGRES_BIN_PATH=_commands.POSTGRES_BIN_PATH,
        ensure_user_exists=utils.ensure_user_exists,
        ensure_prefix_permissions=utils.ensure_prefix_permissions,
        ensure_folder_permissions=utils.ensure_folder_permissions,
    )


def _server_user_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(SERVER_USER)
    return entry.pw_uid, entry.pw_gid


def _age_seconds(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@contextlib.contextmanager
def _locked(path: Path):
    descriptor = _open_lock(path)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
