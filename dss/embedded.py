"""The embedded PostgreSQL server used when DATABASE_URL is not set.

The server's data lives in ``<DSS_STATE_DIR>/postgres``. pgserver keeps a list of the
processes that use a data folder, so the web server, the task worker and any management
command share one running server: the first process starts it and the last one to exit stops
it. As root, pgserver runs the server as a system user named ``pgserver`` that it creates.
"""

import json
import logging
import os
from pathlib import Path

import psutil

PID_LIST = ".handle_pids.json"


def embedded_database_url(state_dir: Path) -> str:
    """Start (or join) the embedded server keeping its data in ``state_dir/postgres``.

    Returns its connection URL (a Unix socket in the data folder). Exits with one line naming
    DSS_STATE_DIR when the folder cannot be used or the server does not start.
    """
    pgdata = state_dir / "postgres"
    runtime_dir = state_dir / "run"
    try:
        pgdata.mkdir(parents=True, exist_ok=True)
        runtime_dir.mkdir(mode=0o700, exist_ok=True)
        runtime_dir.chmod(0o700)  # what XDG_RUNTIME_DIR must have
        probe = state_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise SystemExit(
            f"DSS_STATE_DIR={state_dir}: cannot write the state folder ({error.strerror})"
        ) from None

    # pgserver picks its lock file (and, for long paths, its socket folder) from
    # XDG_RUNTIME_DIR when it is imported; every process of the service must agree on it.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime_dir))
    import pgserver

    pgserver_logger = logging.getLogger("pgserver")
    level = pgserver_logger.level
    # A failed start makes pgserver log the whole server log; our one line points at it.
    pgserver_logger.setLevel(logging.CRITICAL)
    try:
        forget_dead_processes(state_dir)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as error:  # pgserver raises plain exceptions for every failure
        raise SystemExit(
            f"DSS_STATE_DIR={state_dir}: the embedded PostgreSQL server did not start "
            f"({type(error).__name__}; its log is {pgdata / 'log'})"
        ) from None
    finally:
        pgserver_logger.setLevel(level)
    return server.get_uri()


def forget_dead_processes(state_dir: Path) -> None:
    """Drop processes that died without saying so (killed) from pgserver's list of users.

    Otherwise the server would never be stopped: the last live process would still see them.
    """
    from pgserver.postgres_server import PostgresServer

    pid_list = state_dir / "postgres" / PID_LIST
    with PostgresServer._lock:
        try:
            pids = json.loads(pid_list.read_text())
        except (FileNotFoundError, ValueError):
            return
        alive = [pid for pid in pids if _is_alive(pid)]
        if alive != pids:
            pid_list.write_text(json.dumps(alive))


def _is_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
