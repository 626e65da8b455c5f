"""Ingest runs and the ingest_sources command: the registry, skips, --force, failures,
dependency order and the data-flow trigger."""

import contextlib
import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command

from pipelines.catalogue import CATALOGUE
from pipelines.datasets import L1Column, Mode
from pipelines.ingesting import ingest_sources
from pipelines.models import DatafileRegistry
from pipelines.sources import Catalogue, Source
from tests.pipelines import source_files
from tests.pipelines.conftest import make_dataset, rows, zip_bytes

ROOT = Path(__file__).resolve().parents[2]
BACI = CATALOGUE.get("dit.baci")
BACI_HEADER = b"t,hs6,i,j,v,q\n"


def run_command(*args: str) -> str:
    out = io.StringIO()
    call_command("ingest_sources", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def registry(source_id: str) -> dict[str, tuple[str, str]]:
    return {
        entry.file_name: (entry.state, entry.error_message)
        for entry in DatafileRegistry.objects.filter(source=source_id)
    }


def test_a_second_run_skips_the_files_already_processed(pg, store):
    store("dit/baci/2019.csv", BACI_HEADER + b"2019,1,2,3,4.5,6\n")
    first = run_command("--dit.baci")
    store("dit/baci/2020.csv", BACI_HEADER + b"2020,1,2,3,4.5,6\n")

    second = run_command("--dit.baci")

    assert "1 file(s) processed, 0 failed, 0 skipped; 1 rows loaded" in first
    assert "1 file(s) processed, 0 failed, 1 skipped; 1 rows loaded" in second
    assert rows(pg, BACI.dataset, "L1", "year") == [(2019,), (2020,)]
    assert registry("dit.baci") == {"2019.csv": ("processed", ""), "2020.csv": ("processed", "")}


def test_force_rebuilds_the_dataset_once_from_all_its_files(pg, store):
    store("dit/baci/2019.csv", BACI_HEADER + b"2019,1,2,3,4.5,6\n")
    store("dit/baci/2020.csv", BACI_HEADER + b"2020,1,2,3,4.5,6\n")
    run_command("--dit.baci")

    output = run_command("--dit.baci", "--force")

    assert "2 file(s) processed, 0 failed, 0 skipped; 2 rows loaded" in output
    assert rows(pg, BACI.dataset, "L0", "datafile_created, t") == [
        ("2019.csv", 2019),
        ("2020.csv", 2020),
    ]
    assert len(rows(pg, BACI.dataset, "L1")) == 2


def test_a_bad_file_fails_with_its_line_and_column_and_the_previous_data_stays(pg, store):
    store("dit/baci/2019.csv", BACI_HEADER + b"2019,1,2,3,4.5,6\n")
    run_command("--dit.baci")
    store("dit/baci/2020.csv", BACI_HEADER + b"2020,1,2,3,4.5,6\n2020,x,2,3,4.5,6\n")
    store("dit/baci/2021.csv", BACI_HEADER + b"2021,1,2,3,4.5,6\n")

    with pytest.raises(CommandError, match="1 file"):
        run_command("--dit.baci")

    state, message = registry("dit.baci")["2020.csv"]
    assert state == "failed"
    assert message == (
        '2020.csv: line 3, column hs6, value "x": invalid input syntax for type integer: "x"'
    )
    assert registry("dit.baci")["2021.csv"] == ("processed", "")
    assert rows(pg, BACI.dataset, "L0", "t") == [(2019,), (2021,)]


def test_failed_files_are_retried_and_ignored_files_skipped(pg, store):
    store("dit/baci/2019.csv", BACI_HEADER + b"2019,1,2,3,4.5,6\n")
    store("dit/baci/2020.csv", BACI_HEADER + b"2020,1,2,3,4.5,6\n")
    DatafileRegistry.objects.create(source="dit.baci", file_name="2019.csv", state="failed")
    DatafileRegistry.objects.create(source="dit.baci", file_name="2020.csv", state="ignored")

    output = run_command("--dit.baci")

    assert "1 file(s) processed, 0 failed, 1 skipped" in output
    assert rows(pg, BACI.dataset, "L0", "t") == [(2019,)]


def mark(source_id: str, name: str, state: str, message: str = "") -> None:
    DatafileRegistry.objects.filter(source=source_id, file_name=name).update(
        state=state, error_message=message
    )


def test_force_never_loads_an_ignored_file_nor_changes_its_mark(pg, store):
    store("dit/baci/2019.csv", BACI_HEADER + b"2019,1,2,3,4.5,6\n")
    store("dit/baci/2020.csv", BACI_HEADER + b"2020,1,2,3,4.5,6\n")
    store("dit/baci/2021.csv", BACI_HEADER + b"2021,1,2,3,4.5,6\n")
    run_command("--dit.baci")
    mark("dit.baci", "2020.csv", "ignored", "wrong release, see ticket 12")

    output = run_command("--dit.baci", "--force")

    assert "2 file(s) processed, 0 failed, 1 skipped; 2 rows loaded" in output
    # The rebuild dropped the ignored file's rows and did not load them again.
    assert rows(pg, BACI.dataset, "L0", "t") == [(2019,), (2021,)]
    assert rows(pg, BACI.dataset, "L1", "year") == [(2019,), (2021,)]
    assert registry("dit.baci")["2020.csv"] == ("ignored", "wrong release, see ticket 12")


def test_force_rebuilds_from_the_first_file_that_is_not_ignored(pg, store):
    """Sibling: the ignored file is the first one, and was never loaded."""
    store("dit/baci/2019.csv", BACI_HEADER + b"2019,1,2,3,4.5,6\n")
    store("dit/baci/2020.csv", BACI_HEADER + b"2020,1,2,3,4.5,6\n")
    run_command("--dit.baci")
    store("dit/baci/2018.csv", BACI_HEADER + b"2018,x,2,3,4.5,6\n")
    DatafileRegistry.objects.create(source="dit.baci", file_name="2018.csv", state="ignored")

    output = run_command("--dit.baci", "--force")

    assert "2 file(s) processed, 0 failed, 1 skipped" in output
    assert rows(pg, BACI.dataset, "L0", "t") == [(2019,), (2020,)]
    assert registry("dit.baci")["2018.csv"] == ("ignored", "")


def test_a_forced_run_with_every_file_ignored_leaves_the_tables_and_says_so(pg, store, caplog):
    store("dit/baci/2019.csv", BACI_HEADER + b"2019,1,2,3,4.5,6\n")
    run_command("--dit.baci")
    mark("dit.baci", "2019.csv", "ignored")

    output = run_command("--dit.baci", "--force")

    assert "0 file(s) processed, 0 failed, 1 skipped" in output
    assert rows(pg, BACI.dataset, "L0", "t") == [(2019,)]
    assert "dit.baci: no file was loaded; the tables were not rebuilt" in caplog.text


def test_a_file_marked_ignored_while_it_loads_is_rolled_back_and_keeps_its_mark(
    pg, store, settings, conninfo
):
    store("dit/baci/2019.csv", BACI_HEADER + b"2019,1,2,3,4.5,6\n")
    run_command("--dit.baci")
    store("dit/baci/2020.csv", BACI_HEADER + b"2020,1,2,3,4.5,6\n")

    @contextlib.contextmanager
    def operator_marks_it_ignored(name, size):
        # The operator's change commits on its own connection while the file is read.
        def on_progress(read: int) -> None:
            with psycopg.connect(conninfo, autocommit=True) as other:
                other.execute(
                    "UPDATE pipelines_datafileregistry SET state = 'ignored' "
                    "WHERE source = 'dit.baci' AND file_name = %s",
                    (name,),
                )

        yield on_progress

    [run] = ingest_sources(
        CATALOGUE, ["dit.baci"], settings.DATASETS_FOLDER, progress=operator_marks_it_ignored
    )

    assert (run.processed, run.failed, run.skipped) == (0, 0, 2)
    assert rows(pg, BACI.dataset, "L0", "t") == [(2019,)]
    assert registry("dit.baci")["2020.csv"] == ("ignored", "")


@pytest.fixture
def registry_refuses_processed(pg):
    """A trigger that makes the registry's move of ``refused.csv`` to processed fail."""
    pg.execute(
        "CREATE FUNCTION refuse_processed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF NEW.state = 'processed' AND NEW.file_name = 'refused.csv' THEN "
        "RAISE EXCEPTION 'registry is read-only for refused.csv'; END IF; RETURN NEW; END $$"
    )
    pg.execute(
        "CREATE TRIGGER refuse_processed BEFORE UPDATE ON pipelines_datafileregistry "
        "FOR EACH ROW EXECUTE FUNCTION refuse_processed()"
    )
    yield
    pg.execute("DROP TRIGGER refuse_processed ON pipelines_datafileregistry")
    pg.execute("DROP FUNCTION refuse_processed()")


@pytest.mark.parametrize("first_load", [True, False], ids=["empty tables", "loaded tables"])
def test_a_failed_registry_update_leaves_the_load_undone(
    pg, store, registry_refuses_processed, first_load
):
    """The load and the move to processed are one transaction: neither without the other."""
    if not first_load:
        store("dit/baci/2019.csv", BACI_HEADER + b"2019,1,2,3,4.5,6\n")
        run_command("--dit.baci")
    store("dit/baci/refused.csv", BACI_HEADER + b"2020,1,2,3,4.5,6\n")

    with pytest.raises(CommandError, match="1 file"):
        run_command("--dit.baci")

    state, message = registry("dit.baci")["refused.csv"]
    assert state == "failed"
    assert "registry is read-only for refused.csv" in message
    expected = [] if first_load else [(2019,)]
    assert rows(pg, BACI.dataset, "L0", "t") == expected
    assert rows(pg, BACI.dataset, "L1", "year") == expected


def test_ingest_refuses_to_run_inside_a_transaction(db, settings):
    """Each file commits on its own: a caller's open transaction would swallow that."""
    with pytest.raises(RuntimeError, match="outside a transaction"):
        ingest_sources(CATALOGUE, ["dit.baci"], settings.DATASETS_FOLDER)


def test_junk_files_in_storage_are_not_datafiles(pg, store):
    store("dit/baci/.DS_Store", b"\0\0")
    store("dit/baci/__MACOSX/._baci.csv", b"\0\0")
    store("dit/baci/baci.csv", source_files.BACI)

    output = run_command("--dit.baci")

    assert "1 file(s) processed" in output
    assert list(registry("dit.baci")) == ["baci.csv"]


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_zipped_file_is_loaded_from_its_member_and_named_after_it(pg, store, backend, request):
    if backend == "s3":
        request.getfixturevalue("s3_storage")
    inner = zip_bytes({"__MACOSX/._baci.csv": b"\0", "baci.csv": source_files.BACI})
    store("dit/baci/outer.zip", zip_bytes({"readme/": b"", "inner.zip": inner}))

    run_command("--dit.baci")

    assert registry("dit.baci") == {"outer.zip": ("processed", "")}
    assert rows(pg, BACI.dataset, "L0", "datafile_created, t") == [
        ("baci.csv", 1995),
        ("baci.csv", 1995),
    ]


def test_ingest_reads_from_s3(pg, s3_storage, store):
    store("dit/baci/baci.csv", source_files.BACI)

    run_command("--dit.baci")

    assert rows(pg, BACI.dataset, "L1", "importer") == [(251,), (381,)]


def test_no_arguments_prints_the_help(pg, capsys):
    call_command("ingest_sources")

    assert "--dit.baci" in capsys.readouterr().out


def test_list_names_every_source(pg):
    output = run_command("--list")

    assert [line.split()[0] for line in output.splitlines()] == [s.id for s in CATALOGUE]


def test_list_aligns_its_columns_and_says_how_sources_with_their_own_steps_load(pg):
    lines = {line.split()[0]: line for line in run_command("--list").splitlines()}

    assert len({line.index(" built-in ") for line in lines.values()}) == 1
    transform = lines["world_bank.tariff.transformed"].split()
    assert transform[2] == "transform"
    assert "origin: none (built from its inputs)" in lines["world_bank.tariff.transformed"]
    assert lines["dit.spire.batches"].split()[2] == "replace"
    assert lines["dit.baci"].split()[2] == "incremental"


def test_the_command_exits_non_zero_and_logs_lines_when_a_file_fails(
    pg, database_url, storage_folder, service_environment, store
):
    store("dit/baci/bad.csv", BACI_HEADER + b"1995,1,2\n")
    env = {
        **service_environment,
        "DATABASE_URL": database_url,
        "DSS_STORAGE_DIR": str(storage_folder),
        "DEBUG": "1",
        "LOG_FORMAT": "plain",
    }

    done = subprocess.run(
        [sys.executable, "manage.py", "ingest_sources", "--dit.baci"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 1
    assert "0 file(s) processed, 1 failed, 0 skipped; 0 rows loaded" in done.stdout
    assert 'bad.csv: line 2 ("1995,1,2"): missing data for column "j"' in done.stderr
    assert "dit.baci: loading bad.csv" in done.stderr


def test_the_command_shows_a_progress_bar_on_a_terminal(
    pg, database_url, storage_folder, service_environment, store
):
    store("dit/baci/baci.csv", source_files.BACI)
    env = {
        **service_environment,
        "DATABASE_URL": database_url,
        "DSS_STORAGE_DIR": str(storage_folder),
        "DEBUG": "1",
    }
    terminal, child_end = pty.openpty()
    # A terminal 100 columns wide (a new pseudo-terminal has none, and the bar would be empty).
    fcntl.ioctl(child_end, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))

    done = subprocess.run(
        [sys.executable, "manage.py", "ingest_sources", "--dit.baci"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=child_end,
        text=True,
        timeout=60,
    )
    os.close(child_end)
    shown = b""
    with contextlib.suppress(OSError):  # EIO once everything written has been read
        while chunk := os.read(terminal, 4096):
            shown += chunk
    os.close(terminal)

    assert done.returncode == 0
    text = shown.decode()
    assert re.search(r"\rbaci\.csv: +\d+%\|", text)
    # A line logged while the bar is drawn starts a line of its own, not the bar's.
    logged = text.index("dit.baci: loaded baci.csv")
    line_start = max(text.rfind("\r", 0, logged), text.rfind("\n", 0, logged))
    assert "baci.csv:" not in text[line_start:logged].replace("dit.baci: loaded", "")


def tracked_source(source_id: str, depends_on: tuple[str, ...] = (), **options) -> Source:
    organisation, name = source_id.split(".")
    return Source(
        id=source_id,
        dataset=make_dataset(Mode.INCREMENTAL, name=name, **options),
        folder=f"test/{name}",
        depends_on=depends_on,
    )


def test_sources_run_after_the_sources_they_depend_on(pg, settings, store):
    catalogue = Catalogue(
        [
            tracked_source("test.transform", depends_on=("test.rates", "test.countries")),
            tracked_source("test.rates", depends_on=("test.countries",)),
            tracked_source("test.countries"),
            tracked_source("test.other"),
        ]
    )
    for source in catalogue:
        store(f"{source.folder}/one.csv", b"a,b\n1,x\n")

    runs = ingest_sources(
        catalogue,
        ["test.other", "test.transform", "test.countries", "test.rates"],
        settings.DATASETS_FOLDER,
    )

    expected = ["test.countries", "test.rates", "test.transform", "test.other"]
    assert [run.source_id for run in runs] == expected
    assert (
        list(DatafileRegistry.objects.order_by("created").values_list("source", flat=True))
        == expected
    )


def test_dependency_cycles_are_refused():
    with pytest.raises(ValueError, match="cycle: test.a -> test.b -> test.a"):
        Catalogue([tracked_source("test.a", ("test.b",)), tracked_source("test.b", ("test.a",))])


def test_a_run_that_loaded_data_triggers_dataflow_for_the_served_table(
    pg, settings, store, dataflow
):
    source = Source(
        id="test.things",
        dataset=make_dataset(Mode.INCREMENTAL, l1=(L1Column("a", "integer"),)),
        folder="test/things",
        trigger_dataflow=True,
    )
    catalogue = Catalogue([source])
    store("test/things/one.csv", b"a,b\n1,x\n")

    ingest_sources(catalogue, [source.id], settings.DATASETS_FOLDER)
    ingest_sources(catalogue, [source.id], settings.DATASETS_FOLDER)  # nothing new: no trigger

    assert dataflow.refused == 0
    assert dataflow.triggered == [
        {"conf": {"data_uploader_schema_name": "test.things", "data_uploader_table_name": "L1"}}
    ]
