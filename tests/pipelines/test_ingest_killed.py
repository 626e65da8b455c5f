"""Ingest runs killed (SIGKILL) at random moments: a file's rows and its registry entry's
move to processed commit together or not at all, and the next run finishes the work."""

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.catalogue import CATALOGUE
from pipelines.models import DatafileRegistry
from tests.pipelines.conftest import rows

ROOT = Path(__file__).resolve().parents[2]
BACI = CATALOGUE.get("dit.baci").dataset
FILES = 24
ROWS_PER_FILE = 20_000
KILLS = 8


def baci_file(year: int) -> bytes:
    lines = [f"{year},{number},4,8,1.5,2" for number in range(ROWS_PER_FILE)]
    return ("t,hs6,i,j,v,q\n" + "\n".join(lines) + "\n").encode()


def loaded_files(pg) -> dict[str, int]:
    """Rows per datafile in L0."""
    return dict(
        pg.execute(
            'SELECT datafile_created, count(*) FROM "dit.baci"."L0" GROUP BY datafile_created'
        ).fetchall()
    )


def processed_files() -> set[str]:
    entries = DatafileRegistry.objects.filter(source="dit.baci", state="processed")
    return set(entries.values_list("file_name", flat=True))


@pytest.mark.slow
def test_runs_killed_at_random_moments_keep_loads_and_registry_together(
    pg, database_url, storage_folder, service_environment, store
):
    names = [f"{year}.csv" for year in range(2000, 2000 + FILES)]
    for year, name in zip(range(2000, 2000 + FILES), names, strict=True):
        store(f"dit/baci/{name}", baci_file(year))
    env = {
        **service_environment,
        "DATABASE_URL": database_url,
        "DSS_STORAGE_DIR": str(storage_folder),
        "DEBUG": "1",
    }
    command = [sys.executable, "manage.py", "ingest_sources", "--dit.baci"]
    seed = random.randrange(1_000_000)
    moments = random.Random(seed)
    progress = []

    for _ in range(KILLS):
        # Killed at a random moment once the run has started loading (startup takes a
        # second or more, and a kill then would test nothing).
        child = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        started = any(b"dit.baci: loading" in line for line in child.stderr)
        time.sleep(moments.uniform(0, 0.5))
        child.kill()
        child.wait()
        child.stderr.close()
        loaded, processed = loaded_files(pg), processed_files()
        assert set(loaded) == processed, f"seed {seed}"
        assert set(loaded.values()) <= {ROWS_PER_FILE}, f"seed {seed}"
        mid_load = DatafileRegistry.objects.filter(source="dit.baci", state="processing")
        progress.append((started, len(processed), mid_load.count()))

    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300)

    assert finished.returncode == 0, finished.stderr
    assert loaded_files(pg) == dict.fromkeys(names, ROWS_PER_FILE)
    assert processed_files() == set(names)
    assert len(rows(pg, BACI, "L1", "id")) == FILES * ROWS_PER_FILE
    print(
        f"seed {seed}: after each kill (loading started, files processed, killed mid-load): "
        f"{progress}"
    )
