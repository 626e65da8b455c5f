"""``python3 dev.py run`` on a fresh folder with nothing set: started, interrupted, crashed.

Each test runs the real run command (web server, task worker, embedded PostgreSQL) with the
environment a newcomer has: none of the service's variables. Only the state folder and the
local settings file are moved into temporary places, standing in for ``.state/`` and ``.env``.
"""

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("DSS_RUN_ROUNDS", "6"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        Path(sys.prefix).resolve() != (PROJECT_DIR / ".venv").resolve(),
        reason="dev.py runs the service from the project's .venv",
    ),
]

# The README's commands, as a newcomer types them (each must end with status 0).
README_COMMANDS = [
    ["check_services"],
    ["ingest_sources", "--list"],
    ["fetch_sources", "--list"],
    ["ingest_sources", "--all"],
    ["add_hawk_client", "--help"],
    ["db_worker", "--batch"],
]


@pytest.fixture
def newcomer(service_environment, state_dir, tmp_path) -> dict[str, str]:
    """Nothing set but where the state folder and the local settings file are."""
    return {
        **service_environment,
        "DSS_STATE_DIR": str(state_dir),
        "DSS_ENV_FILE": str(tmp_path / ".env"),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RunCommand:
    """One ``dev.py run`` in the background, its output in a file, its processes watched."""

    def __init__(self, environment: dict[str, str], log: Path, *options: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with log.open("a") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "dev.py",
                    "--no-install",
                    "run",
                    "--port",
                    str(self.port),
                    *options,
                ],
                cwd=PROJECT_DIR,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.seen: dict[int, psutil.Process] = {}

    def watch(self) -> None:
        """Remember every process the run command has started so far."""
        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.seen.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/healthcheck/", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    def wait_until_healthy(self, seconds: float = 120) -> float:
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            self.watch()
            assert self.process.poll() is None, f"the run command ended early:\n{self.output()}"
            if self.healthy():
                self.watch()
                return time.monotonic() - began
            time.sleep(0.2)
        raise AssertionError(f"no answer to /healthcheck/ in {seconds}s:\n{self.output()}")

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)

    def leftovers(self, seconds: float = 20) -> list[psutil.Process]:
        """The processes it started that are still alive after ``seconds`` (none, we hope).

        The database server is not counted: it is shared, and outlives a killed run command
        when nothing was left to stop it (server_running tells whether it still runs).
        """
        deadline = time.monotonic() + seconds
        while True:
            alive = [process for process in self.seen.values() if _alive(process)]
            alive = [process for process in alive if _name(process) != "postgres"]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text()


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except psutil.NoSuchProcess:
        return ""


def server_running(state: Path) -> bool:
    try:
        pid = int((state / "postgres" / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def manage(arguments: list[str], environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_command_starts_and_stops_cleanly_again_and_again(newcomer, state_dir, tmp_path):
    log = tmp_path / "run.log"
    began = time.monotonic()
    for round_number in range(ROUNDS):
        run = RunCommand(newcomer, log)
        try:
            run.wait_until_healthy()
        finally:
            returncode = run.interrupt()

        assert returncode == 0, run.output()
        assert run.seen, "the run command started no processes"
        assert run.leftovers() == []
        assert not server_running(state_dir), f"round {round_number}: the database still runs"
    output = log.read_text()
    assert output.count("Created the admin user 'admin'") == 1  # the first run only
    assert output.count("Created the HAWK client 'dev-client'") == 1
    env_file = Path(newcomer["DSS_ENV_FILE"])
    assert "DEBUG=true" in env_file.read_text()
    assert "SECRET_KEY=" in env_file.read_text()
    print(f"{ROUNDS} start/Ctrl-C rounds in {time.monotonic() - began:.1f}s")


def test_run_command_killed_at_random_moments_always_starts_again(newcomer, state_dir, tmp_path):
    log = tmp_path / "run.log"
    seed = int(os.environ.get("DSS_STRESS_SEED") or time.time_ns())
    print(f"seed {seed} (DSS_STRESS_SEED repeats this run)")
    chooser = random.Random(seed)
    began = time.monotonic()
    first = RunCommand(newcomer, log)
    first.wait_until_healthy()
    first.process.kill()
    assert first.leftovers() == [], "web or worker outlived a killed run command"
    for round_number in range(ROUNDS):
        run = RunCommand(newcomer, log)
        took = run.wait_until_healthy()  # after whatever the previous round left
        deadline = time.monotonic() + chooser.uniform(0, took + 1)
        while time.monotonic() < deadline:
            run.watch()
            time.sleep(0.05)
        run.process.kill()
        run.process.wait()
        assert run.leftovers() == [], f"round {round_number}: processes outlived the run"

    last = RunCommand(newcomer, log)
    try:
        last.wait_until_healthy()
    finally:
        assert last.interrupt() == 0, last.output()
    assert last.leftovers() == []
    assert not server_running(state_dir)
    print(f"{ROUNDS} crash-and-restart rounds in {time.monotonic() - began:.1f}s")


def test_readme_commands_run_beside_the_run_command_and_alone(newcomer, state_dir, tmp_path):
    run = RunCommand(newcomer, tmp_path / "run.log")
    try:
        run.wait_until_healthy()
        for arguments in README_COMMANDS:
            result = manage(arguments, newcomer)
            assert result.returncode == 0, f"beside the run command: {arguments}: {result.stderr}"
        assert run.healthy()  # the commands left the shared server running
    finally:
        assert run.interrupt() == 0, run.output()

    for arguments in README_COMMANDS:
        result = manage(arguments, newcomer)
        assert result.returncode == 0, f"alone: {arguments}: {result.stderr}"
        assert not server_running(state_dir), f"{arguments} left the database running"


@pytest.mark.django_db(transaction=True)
def test_dev_accounts_are_not_created_on_a_database_url_database(
    service_environment, database_url, state_dir, tmp_path
):
    from django.contrib.auth import get_user_model

    from api.models import HawkClient

    environment = {
        **service_environment,
        "DATABASE_URL": database_url,
        "DSS_STATE_DIR": str(state_dir),
        "DSS_ENV_FILE": str(tmp_path / ".env"),
    }
    run = RunCommand(environment, tmp_path / "run.log")
    try:
        run.wait_until_healthy()
    finally:
        assert run.interrupt() == 0, run.output()

    assert not get_user_model().objects.filter(username="admin").exists()
    assert not HawkClient.objects.filter(id="dev-client").exists()
    assert "--dev-accounts" in run.output()
    assert not (state_dir / "postgres").exists()  # no embedded server was started


@pytest.mark.django_db(transaction=True)
def test_dev_accounts_are_created_on_a_database_url_database_when_asked(
    service_environment, database_url, state_dir, tmp_path
):
    from django.contrib.auth import get_user_model

    from api.models import HawkClient

    environment = {
        **service_environment,
        "DATABASE_URL": database_url,
        "DSS_STATE_DIR": str(state_dir),
        "DSS_ENV_FILE": str(tmp_path / ".env"),
    }
    run = RunCommand(environment, tmp_path / "run.log", "--dev-accounts")
    try:
        run.wait_until_healthy()
    finally:
        assert run.interrupt() == 0, run.output()

    assert get_user_model().objects.filter(username="admin", is_superuser=True).exists()
    assert HawkClient.objects.get(id="dev-client").scopes == ["*"]
