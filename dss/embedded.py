"""The embedded PostgreSQL server used when DATABASE_URL is not set.

The server's data lives in a folder under the state directory. pgserver keeps a list of the
processes that use a data folder, so the web server, the task worker and any management
command share one running server: the first process starts it and the last one to exit stops it.
"""

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def embedded_database_url(state_dir: Path) -> str:
    """Start (or join) the embedded server keeping its data in ``state_dir/postgres``.

    Returns its connection URL. Exits with one line naming DSS_STATE_DIR when the folder
    cannot be used.
    """
    pgdata = state_dir / "postgres"
    try:
        pgdata.mkdir(parents=True, exist_ok=True)
        probe = pgdata / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise SystemExit(
            f"DSS_STATE_DIR={state_dir}: cannot write the embedded database folder "
            f"({error.strerror})"
        ) from None

    # Imported late: pgserver is only needed when no DATABASE_URL is given.
    import pgserver

    os.environ.setdefault("XDG_RUNTIME_DIR", str(state_dir / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as error:  # pgserver raises plain exceptions for every failure
        raise SystemExit(
            f"DSS_STATE_DIR={state_dir}: the embedded PostgreSQL server did not start ({error})"
        ) from None
    return server.get_uri()
