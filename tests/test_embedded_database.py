"""Without DATABASE_URL, processes of the service share one embedded PostgreSQL server.

Each test runs real processes on a state folder of its own; a process that uses the server is
``python -c`` over ``dss.embedded`` (fast to start) or ``manage.py`` (the real entry point).
Crashes are real: SIGKILL of the processes and of the server.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
SERVER_START = (
    "from django.db import connection\n"
    "with connection.cursor() as cursor:\n"
    "    cursor.execute('SELECT pg_postmaster_start_time()')\n"
    "    print(cursor.fetchone()[0], flush=True)\n"
)
SERVER_PID = (
    "import psutil\n"
    "from django.db import connection\n"
    "with connection.cursor() as cursor:\n"
    "    cursor.execute('SELECT pg_backend_pid()')\n"
    "    print(psutil.Process(cursor.fetchone()[0]).ppid())\n"
)
# A user of the server: joins (or starts) it, runs a query, stays a while, exits normally.
USER = (
    "import sys, time, psycopg\n"
    "from pathlib import Path\n"
    "from dss.embedded import embedded_database_url\n"
    "url = embedded_database_url(Path(sys.argv[1]))\n"
    "with psycopg.connect(url, autocommit=True) as connection:\n"
    "    connection.execute('SELECT count(*) FROM pg_class').fetchone()\n"
    "time.sleep(float(sys.argv[2]))\n"
)
# Checks the data that earlier rounds left, then adds this round's mark; prints the marks.
CHECK_AND_MARK = (
    "import sys, psycopg\n"
    "from pathlib import Path\n"
    "from dss.embedded import embedded_database_url\n"
    "url = embedded_database_url(Path(sys.argv[1]))\n"
    "with psycopg.connect(url, autocommit=True) as connection:\n"
    "    connection.execute('CREATE TABLE IF NOT EXISTS marks (round int PRIMARY KEY)')\n"
    "    connection.execute('CREATE TABLE IF NOT EXISTS kept AS '\n"
    "                       'SELECT n FROM generate_series(1, 1000) AS n')\n"
    "    assert connection.execute('SELECT sum(n) FROM kept').fetchone()[0] == 500500\n"
    "    connection.execute('INSERT INTO marks VALUES (%s)', [int(sys.argv[2])])\n"
    "    print(connection.execute('SELECT count(*) FROM marks').fetchone()[0])\n"
)


def shell(code: str) -> list[str]:
    return [sys.executable, "manage.py", "shell", "--no-imports", "-c", code]


def python(code: str, *arguments: object) -> list[str]:
    return [sys.executable, "-c", code, *map(str, arguments)]


@pytest.fixture
def state(state_dir) -> Path:
    return state_dir


@pytest.fixture
def environment(service_environment, state) -> dict[str, str]:
    return {**service_environment, "DEBUG": "true", "DSS_STATE_DIR": str(state)}


def run(command: list[str], environment: dict[str, str], timeout: float = 120):
    return subprocess.run(
        command, cwd=PROJECT_DIR, env=environment, capture_output=True, text=True, timeout=timeout
    )


def start(command: list[str], environment: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def postmaster_pid(state: Path) -> int | None:
    try:
        return int((state / "postgres" / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def postmaster_status(state: Path) -> str:
    try:
        lines = (state / "postgres" / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return ""
    return lines[7].strip() if len(lines) > 7 else ""


def servers_of(state: Path) -> list[psutil.Process]:
    """The live postmasters working in this state folder (there must be at most one)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(state / "postgres") in cmdline:
            found.append(process)
    return found


def check_and_mark(state: Path, environment: dict[str, str], mark: int) -> int:
    """Start (or join) the server, check the data, add a mark; the number of marks."""
    result = run(python(CHECK_AND_MARK, state, mark), environment)
    log = state / "postgres" / "log"
    assert result.returncode == 0, result.stderr + (log.read_text()[-3000:] if log.exists() else "")
    return int(result.stdout)


@pytest.mark.slow
def test_a_second_process_joins_the_running_server_and_the_last_one_stops_it(environment, state):
    first = subprocess.Popen(
        shell(SERVER_START + "import sys; sys.stdin.read()"),
        cwd=PROJECT_DIR,
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started_for_first = first.stdout.readline().strip()
        second = run(shell(SERVER_START), environment)
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == started_for_first
        assert (state / "postgres" / "postmaster.pid").exists()  # the second left it running
    finally:
        _, errors = first.communicate("", timeout=60)

    assert first.returncode == 0, errors
    assert not (state / "postgres" / "postmaster.pid").exists(), errors


def test_a_server_killed_like_a_power_cut_is_started_again_with_its_data(environment, state):
    assert check_and_mark(state, environment, 1) == 1
    holder = start(python(USER, state, 60), environment)
    try:
        deadline = time.monotonic() + 60
        while postmaster_pid(state) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(postmaster_pid(state), signal.SIGKILL)
    finally:
        holder.kill()
        holder.wait()

    assert check_and_mark(state, environment, 2) == 2
    assert not servers_of(state)


def test_a_server_left_by_a_killed_run_is_joined_not_duplicated(environment, state):
    holder = start(python(USER, state, 60), environment)
    deadline = time.monotonic() + 60
    while not servers_of(state) and time.monotonic() < deadline:
        time.sleep(0.1)
    while postmaster_status(state) != "ready" and time.monotonic() < deadline:
        time.sleep(0.1)
    left_running = postmaster_pid(state)
    holder.kill()  # no exit hooks: the server stays, with no user
    holder.wait()

    joined = run(shell(SERVER_PID), environment)

    assert joined.returncode == 0, joined.stderr
    assert int(joined.stdout) == left_running  # the same server, not a second one
    assert not alive(left_running)  # the joiner, its last user, stopped it
    assert not servers_of(state)


def test_a_forked_child_keeps_the_server_after_its_parent_ends(environment, state):
    code = (
        "import os, sys, time, psycopg\n"
        "from pathlib import Path\n"
        "from dss.embedded import embedded_database_url\n"
        "url = embedded_database_url(Path(sys.argv[1]))\n"
        "if os.fork() == 0:\n"
        "    time.sleep(2)\n"  # the parent has ended meanwhile
        "    with psycopg.connect(url) as connection:\n"
        "        print(connection.execute('SELECT 42').fetchone()[0], flush=True)\n"
        "    sys.exit(0)\n"
    )
    with subprocess.Popen(
        python(code, state),
        cwd=PROJECT_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as parent:
        output, errors = parent.communicate(timeout=60)  # waits for the child's output too

    assert output.strip() == "42", errors
    deadline = time.monotonic() + 30
    while servers_of(state) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not servers_of(state)  # the child, its last user, stopped it


@pytest.mark.parametrize("content", ["", "12", "not a pid\n"], ids=["empty", "cut", "garbage"])
def test_a_broken_postmaster_pid_file_does_not_stop_the_start(environment, state, content):
    assert check_and_mark(state, environment, 1) == 1
    pid_file = state / "postgres" / "postmaster.pid"
    pid_file.write_text(content)
    old = time.time() - 60
    os.utime(pid_file, (old, old))  # written long ago, by a server that is gone

    assert check_and_mark(state, environment, 2) == 2


def test_a_postmaster_pid_naming_a_live_process_that_is_not_the_server_is_replaced(
    environment, state
):
    assert check_and_mark(state, environment, 1) == 1
    # After a power cut, the server's old process id may belong to anything.
    (state / "postgres" / "postmaster.pid").write_text(f"{os.getpid()}\n")
    (state / "postgres" / ".s.PGSQL.5432.lock").write_text(f"{os.getpid()}\n")

    assert check_and_mark(state, environment, 2) == 2


def test_leftovers_of_the_old_pid_list_and_of_a_killed_initdb_are_ignored(environment, state):
    (state / "postgres").mkdir(parents=True)  # created, but initdb never ran in it
    (state / "postgres.init-deadbeef" / "base").mkdir(parents=True)
    (state / "postgres" / ".handle_pids.json").write_text("")

    # pgserver's empty pid list stopped every start; it means nothing now.
    assert check_and_mark(state, environment, 1) == 1
    assert not (state / "postgres.init-deadbeef").exists()
    [aside] = state.glob("postgres.incomplete-*")
    assert (aside / ".handle_pids.json").exists()  # kept, not deleted


def test_a_state_folder_too_deep_for_a_socket_path_still_works(environment, state):
    deep = state / ("a-long-folder-name-" * 6)
    environment = {**environment, "DSS_STATE_DIR": str(deep)}

    assert check_and_mark(deep, environment, 1) == 1
    assert check_and_mark(deep, environment, 2) == 2


def test_an_unwritable_state_folder_is_named(environment, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    result = run(python(USER, blocker / "state", 0), environment)

    assert result.returncode != 0
    assert f"DSS_STATE_DIR={blocker / 'state'}: cannot write the state folder" in result.stderr


@pytest.mark.slow
def test_processes_killed_at_random_moments_never_stop_the_next_start(environment, state):
    """Rounds of several users starting at once, each killed with SIGKILL at a random moment
    (and in some rounds the server too); after each round a start must succeed, data intact.

    Round 0 starts from an empty folder, so the first initdb is raced and killed too.
    """
    rounds = int(os.environ.get("DSS_STRESS_ROUNDS", "10"))
    seed = int(os.environ.get("DSS_STRESS_SEED") or time.time_ns())
    print(f"seed {seed} (DSS_STRESS_SEED repeats this run)")
    chooser = random.Random(seed)
    started = time.monotonic()
    for round_number in range(rounds):
        processes = [
            start(python(USER, state, chooser.uniform(0, 1.5)), environment) for _ in range(3)
        ]
        processes.append(start(shell(SERVER_START), environment))  # a management command
        kills = sorted(
            ((chooser.uniform(0, 3), process) for process in processes), key=lambda kill: kill[0]
        )
        kill_server_at = chooser.uniform(0.5, 3) if chooser.random() < 0.4 else None
        began = time.monotonic()
        for at, process in kills:
            if kill_server_at is not None and kill_server_at < at:
                _kill_server(state, began + kill_server_at)
                kill_server_at = None
            time.sleep(max(0.0, began + at - time.monotonic()))
            process.kill()
        for process in processes:
            process.wait(timeout=60)

        assert check_and_mark(state, environment, round_number) == round_number + 1
        assert len(servers_of(state)) == 0  # the check was the last user: it stopped it
    print(f"{rounds} rounds in {time.monotonic() - started:.1f}s")


def _kill_server(state: Path, when: float) -> None:
    time.sleep(max(0.0, when - time.monotonic()))
    pid = postmaster_pid(state)
    if pid is not None:
        for server in servers_of(state):
            server.kill()
