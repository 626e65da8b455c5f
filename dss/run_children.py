"""What the run command (``dev.py run``) hands to the processes it runs.

- ``DSS_RUN_DATABASE_URL``: the embedded server that the run command started (or joined).
  Its children use that server instead of each starting or joining it on their own.
- ``DSS_RUN_LIFELINE_FD``: the reading end of a pipe whose writing end only the run command
  holds. When the run command ends, however it ends (killed too), the pipe reports its end and
  each child ends at once, stopping the embedded server when nobody else uses it. So a run
  that was killed leaves no web server holding its port and no worker behind.

Both are set by the run command only; nobody else needs to set them.
"""

import os
import stat
import threading
from pathlib import Path

from dss.environment import env_str

HANDED_DOWN_DATABASE_URL = "DSS_RUN_DATABASE_URL"
LIFELINE_FD = "DSS_RUN_LIFELINE_FD"


def hand_down(database_url: str | None) -> tuple[dict[str, str], int, int]:
    """For the run command: its children's variables, and the lifeline's (read, write) ends.

    The run command passes the read end to its children (``pass_fds``) and keeps the write end
    open, never writing to it, until it ends.
    """
    read_end, write_end = os.pipe()
    variables = {LIFELINE_FD: str(read_end)}
    if database_url:
        variables[HANDED_DOWN_DATABASE_URL] = database_url
    return variables, read_end, write_end


def follow_the_run_command(state_dir: Path | None) -> None:
    """In a child of the run command: end this process when the run command ends.

    ``state_dir``: the state folder of the embedded server to stop if it is left unused, or
    None when the database is not the embedded one. Does nothing outside the run command.
    """
    value = env_str(LIFELINE_FD)
    if not value.isdigit():
        return
    descriptor = int(value)
    try:
        if not stat.S_ISFIFO(os.fstat(descriptor).st_mode):
            return
    except OSError:
        return  # a process started from a child, without the pipe
    threading.Thread(
        target=_end_with_the_run_command,
        args=(descriptor, state_dir),
        name="run-command-lifeline",
        daemon=True,
    ).start()


def _end_with_the_run_command(descriptor: int, state_dir: Path | None) -> None:
    try:
        while os.read(descriptor, 1):
            pass
    except OSError:
        pass
    try:
        if state_dir is not None:
            from dss.embedded import stop_if_unused

            stop_if_unused(state_dir)
    finally:
        os._exit(1)
