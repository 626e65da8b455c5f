"""Without DATABASE_URL, processes of the service share one embedded PostgreSQL server."""

import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
SERVER_START = (
    "from django.db import connection\n"
    "with connection.cursor() as cursor:\n"
    "    cursor.execute('SELECT pg_postmaster_start_time()')\n"
    "    print(cursor.fetchone()[0], flush=True)\n"
)


def shell(code: str) -> list[str]:
    return [sys.executable, "manage.py", "shell", "--no-imports", "-c", code]


@pytest.mark.slow
def test_a_second_process_joins_the_running_server_and_the_last_one_stops_it(
    service_environment, tmp_path
):
    state = tmp_path / "state"
    environment = {**service_environment, "DEBUG": "true", "DSS_STATE_DIR": str(state)}
    first = subprocess.Popen(
        shell(SERVER_START + "import sys; sys.stdin.read()"),
        cwd=PROJECT_DIR,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        started_for_first = first.stdout.readline().strip()
        second = subprocess.run(
            shell(SERVER_START),
            cwd=PROJECT_DIR,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == started_for_first
        assert (state / "postgres" / "postmaster.pid").exists()  # the second left it running
    finally:
        first.communicate("", timeout=60)

    assert first.returncode == 0
    assert not (state / "postgres" / "postmaster.pid").exists()
