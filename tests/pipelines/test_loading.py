"""The loader against real PostgreSQL: snapshot and incremental semantics row by row,
rebuilds, parsing options, and precise errors that leave the previous data intact."""

import hashlib

import psycopg
import pytest

from pipelines.datasets import L1Column, Mode
from pipelines.loading import LoadError
from tests.pipelines.conftest import load_bytes, make_dataset, rows

L1_DOUBLED = (L1Column("a2", "integer", "a * 2"), L1Column("b"))


def test_incremental_appends_every_row_of_every_file_with_its_datafile(pg):
    dataset = make_dataset(Mode.INCREMENTAL, l1=L1_DOUBLED)

    load_bytes(pg, dataset, b"a,b\n1,x\n1,x\n", "one.csv")
    result = load_bytes(pg, dataset, b"a,b\n1,x\n2,y\n", "two.csv")

    assert result.rows_read == 2 and result.l0_rows_added == 2 and result.l1_rows_added == 2
    assert rows(pg, dataset, "L0", "datafile_created, a, b") == [
        ("one.csv", 1, "x"),
        ("one.csv", 1, "x"),
        ("two.csv", 1, "x"),
        ("two.csv", 2, "y"),
    ]
    l0_ids = [row[0] for row in rows(pg, dataset, "L0", "id")]
    assert rows(pg, dataset, "L1", "data_source_row_id, a2, b") == [
        (l0_ids[0], 2, "x"),
        (l0_ids[1], 2, "x"),
        (l0_ids[2], 2, "x"),
        (l0_ids[3], 4, "y"),
    ]


def test_snapshot_keeps_one_row_per_hash_and_marks_the_files_that_had_it(pg):
    dataset = make_dataset(Mode.SNAPSHOT, l1=L1_DOUBLED)

    first = load_bytes(pg, dataset, b"a,b\n1,x\n2,y\n2,y\n", "one.csv")
    second = load_bytes(pg, dataset, b"a,b\n1,x\n2,changed\n2,changed\n", "two.csv")

    assert (first.rows_read, first.l0_rows_added, first.l1_rows_added) == (3, 2, 2)
    assert (second.rows_read, second.l0_rows_added, second.l1_rows_added) == (3, 1, 1)
    l0 = {
        (a, b): (created, updated)
        for created, updated, a, b in rows(
            pg, dataset, "L0", "datafile_created, datafile_updated, a, b"
        )
    }
    assert l0 == {
        (1, "x"): ("one.csv", "two.csv"),  # present in both: keeps its row, learns the newer file
        (2, "y"): ("one.csv", "one.csv"),  # absent from the newer file: kept as it was
        (2, "changed"): ("two.csv", "two.csv"),  # a changed row is a new row
    }
    l0_ids = dict((b, id_) for id_, b in rows(pg, dataset, "L0", "id, b"))
    assert sorted(rows(pg, dataset, "L1", "data_source_row_id, a2, b")) == sorted(
        [(l0_ids["x"], 2, "x"), (l0_ids["y"], 4, "y"), (l0_ids["changed"], 4, "changed")]
    )


def test_snapshot_hash_is_the_md5_of_the_typed_row_text(pg):
    dataset = make_dataset(Mode.SNAPSHOT, columns="t:text n:integer e:text s:text d:numeric")

    load_bytes(pg, dataset, b't,n,e,s,d\nx,,"",a b,1.50\n', "one.csv")

    [(data_hash,)] = rows(pg, dataset, "L0", "data_hash")
    assert data_hash == hashlib.md5(b'(x,,"","a b",1.50)').hexdigest()


def test_snapshot_hash_over_some_columns_keeps_the_first_row_of_a_hash(pg):
    dataset = make_dataset(Mode.SNAPSHOT, hash_columns=("a",))

    load_bytes(pg, dataset, b"a,b\n1,x\n1,other\n2,y\n", "one.csv")

    assert sorted(rows(pg, dataset, "L0", "a")) == [(1,), (2,)]


def test_snapshot_merge_of_rows_new_by_some_columns_keeps_the_first_of_the_file(pg):
    dataset = make_dataset(Mode.SNAPSHOT, hash_columns=("a",))
    load_bytes(pg, dataset, b"a,b\n1,x\n", "one.csv")

    load_bytes(pg, dataset, b"a,b\n2,first\n1,y\n2,second\n2,third\n", "two.csv")

    assert rows(pg, dataset, "L0", "a, b, datafile_updated") == [
        (1, "x", "two.csv"),
        (2, "first", "two.csv"),
    ]


def test_a_load_sets_its_settings_back_for_the_rest_of_the_transaction(pg):
    dataset = make_dataset(Mode.SNAPSHOT)
    work_mem = pg.execute("SHOW work_mem").fetchone()

    with pg.transaction():
        load_bytes(pg, dataset, b"a,b\n1,x\n", "one.csv")
        assert pg.execute("SHOW work_mem").fetchone() == work_mem


def test_snapshot_delete_previous_removes_rows_absent_from_the_latest_file(pg):
    dataset = make_dataset(Mode.SNAPSHOT, l1=L1_DOUBLED, delete_previous=True)

    load_bytes(pg, dataset, b"a,b\n1,x\n2,y\n", "one.csv")
    load_bytes(pg, dataset, b"a,b\n2,y\n3,z\n", "two.csv")

    assert rows(pg, dataset, "L0", "a, datafile_created, datafile_updated") == [
        (2, "one.csv", "two.csv"),
        (3, "two.csv", "two.csv"),
    ]
    assert sorted(rows(pg, dataset, "L1", "a2")) == [(4,), (6,)]


@pytest.mark.parametrize("mode", list(Mode))
def test_a_first_load_creates_l0_with_the_specified_columns_and_keys(pg, mode):
    dataset = make_dataset(mode)

    load_bytes(pg, dataset, b"a,b\n1,x\n", "one.csv")

    columns = pg.execute(
        "SELECT column_name, data_type, collation_name, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = %s AND table_name = 'L0' "
        "ORDER BY ordinal_position",
        (dataset.schema,),
    ).fetchall()
    sequence = f'"{dataset.schema}"."L0_id_seq"'
    id_column = ("id", "integer", None, "NO", f"nextval('{sequence}'::regclass)")
    datafile_default = "current_setting('dss.datafile'::text, true)"
    data = [("a", "integer", None, "YES", None), ("b", "text", None, "YES", None)]
    if mode is Mode.SNAPSHOT:
        helpers = [
            ("datafile_created", "text", None, "YES", datafile_default),
            ("datafile_updated", "text", None, "YES", None),
            ("data_hash", "text", "C", "YES", None),
        ]
        assert columns == [id_column, *helpers, *data]
    else:
        # datafile_created last: added once the first file's rows are in (a fast default).
        helpers = [("datafile_created", "text", None, "YES", datafile_default)]
        assert columns == [id_column, *data, *helpers]
    [(owned_sequence,)] = pg.execute(
        "SELECT pg_get_serial_sequence(%s, 'id')", (f'"{dataset.schema}"."L0"',)
    ).fetchall()
    assert owned_sequence == sequence
    keys = pg.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
        "ORDER BY conname",
        (f'"{dataset.schema}"."L0"',),
    ).fetchall()
    expected_keys = [("UNIQUE (data_hash)",)] if mode is Mode.SNAPSHOT else []
    assert keys == expected_keys + [("PRIMARY KEY (id)",)]


@pytest.mark.parametrize("mode", list(Mode))
def test_rebuild_replaces_the_tables_by_the_file(pg, mode):
    dataset = make_dataset(mode, l1=L1_DOUBLED)
    load_bytes(pg, dataset, b"a,b\n1,x\n2,y\n", "one.csv")

    load_bytes(pg, dataset, b"a,b\n3,z\n", "two.csv", rebuild=True)
    load_bytes(pg, dataset, b"a,b\n4,w\n", "three.csv", rebuild=True)
    load_bytes(pg, dataset, b"a,b\n5,v\n", "four.csv")

    assert rows(pg, dataset, "L0", "id, datafile_created, a") == [
        (1, "three.csv", 4),
        (2, "four.csv", 5),
    ]
    assert rows(pg, dataset, "L1", "data_source_row_id, a2") == [(1, 8), (2, 10)]
    relations = pg.execute(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE nspname = %s ORDER BY relname",
        (dataset.schema,),
    ).fetchall()
    names = {name for (name,) in relations}
    assert {"L0", "L0_pkey", "L0_id_seq", "L1", "L1_pkey", "L1_id_seq"} <= names
    assert not [name for name in names if ".new" in name or name.startswith("dss_")]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"a,b\n1,x\nzz,y\n",
            'bad.csv: line 3, column a, value "zz": invalid input syntax for type integer: "zz"',
        ),
        (
            b"a,b\n1,x\n2,y,extra\n",
            'bad.csv: line 3 ("2,y,extra"): extra data after last expected column',
        ),
        (b"a,b\n1,x\n2\n", 'bad.csv: line 3 ("2"): missing data for column "b"'),
    ],
    ids=["bad value", "extra column", "missing column"],
)
@pytest.mark.parametrize("mode", list(Mode))
def test_a_bad_file_fails_naming_line_column_and_value_and_changes_nothing(
    pg, mode, data, expected
):
    dataset = make_dataset(mode, l1=L1_DOUBLED)
    load_bytes(pg, dataset, b"a,b\n7,old\n", "good.csv")

    with pytest.raises(LoadError) as failure:
        load_bytes(pg, dataset, data, "bad.csv")

    assert str(failure.value) == expected
    assert rows(pg, dataset, "L0", "a, b") == [(7, "old")]
    assert rows(pg, dataset, "L1", "a2, b") == [(14, "old")]


def test_a_copy_error_comes_in_parts_its_line_counting_quoted_line_breaks(pg):
    # COPY counts every line break up to the end of the failing row, quoted ones too.
    dataset = make_dataset(Mode.INCREMENTAL)

    with pytest.raises(LoadError) as failure:
        load_bytes(pg, dataset, b'a,b\n1,"two\nlines"\n2,x\nnope,"y\nz"\n', "bad.csv")

    problem = failure.value.problem
    assert (problem.label, problem.line, problem.column, problem.value) == (
        "bad.csv",
        6,
        "a",
        "nope",
    )
    assert problem.sqlstate == "22P02"
    assert (
        str(failure.value)
        == problem.message
        == (
            'bad.csv: line 6, column a, value "nope": invalid input syntax for type integer: "nope"'
        )
    )


@pytest.mark.parametrize("mode", list(Mode))
def test_ids_follow_on_from_load_to_load_after_a_failed_load_on_another_connection(
    pg, conninfo, mode
):
    dataset = make_dataset(mode, l1=L1_DOUBLED)
    load_bytes(pg, dataset, b"a,b\n1,x\n", "one.csv")
    with pytest.raises(LoadError):  # draws ids for its first rows, then fails
        load_bytes(pg, dataset, b"a,b\n2,y\n3,z\nbad,w\n", "bad.csv")
    with psycopg.connect(conninfo, autocommit=True) as other:
        load_bytes(other, dataset, b"a,b\n4,v\n", "two.csv")

    load_bytes(pg, dataset, b"a,b\n5,u\n", "three.csv")
    load_bytes(pg, dataset, b"a,b\n6,t\n", "four.csv")

    l0 = rows(pg, dataset, "L0", "id, a")
    assert [a for _, a in l0] == [1, 4, 5, 6]
    ids = [id_ for id_, _ in l0]
    assert ids[2:] == [ids[1] + 1, ids[1] + 2]  # no ids skipped after a load that succeeded
    assert rows(pg, dataset, "L1", "data_source_row_id, a2") == [(id_, a * 2) for id_, a in l0]


def test_a_failed_rebuild_keeps_the_previous_tables(pg):
    dataset = make_dataset(Mode.INCREMENTAL)
    load_bytes(pg, dataset, b"a,b\n7,old\n", "good.csv")

    with pytest.raises(LoadError, match="line 2, column a"):
        load_bytes(pg, dataset, b"a,b\nnope,x\n", "bad.csv", rebuild=True)

    assert rows(pg, dataset, "L0", "a, b") == [(7, "old")]


def test_an_l1_expression_failure_names_the_datafile(pg):
    dataset = make_dataset(Mode.INCREMENTAL, l1=(L1Column("d", "date", "to_date(b, 'YYYYMM')"),))

    with pytest.raises(LoadError, match=r"^bad\.csv: .*date"):
        load_bytes(pg, dataset, b"a,b\n1,202413\n", "bad.csv")


def test_quoted_empty_values_load_as_null_only_in_force_null_columns(pg):
    dataset = make_dataset(Mode.INCREMENTAL, columns="a:text b:text c:text", force_null=("a", "b"))

    load_bytes(pg, dataset, b'a,b,c\n"","say ""hi""",""\n,x,\n', "one.csv")

    assert rows(pg, dataset, "L0", "a, b, c") == [(None, 'say "hi"', ""), (None, "x", None)]


def test_delimiter_quote_and_no_header(pg):
    dataset = make_dataset(Mode.INCREMENTAL, delimiter="|", quote="'", header=False)

    load_bytes(pg, dataset, b"1|'a|b'\n2|'it''s'\n", "one.csv")

    assert rows(pg, dataset, "L0", "a, b") == [(1, "a|b"), (2, "it's")]


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("cp1252", "a,b\n1,caf\u00e9 \u2013 \u20ac\n".encode("cp1252")),
        ("mac-roman", "a,b\n1,caf\u00e9 \u2013 \u20ac\n".encode("mac-roman")),
        ("utf-8", "\ufeffa,b\n1,caf\u00e9 \u2013 \u20ac\n".encode()),
    ],
)
def test_files_in_other_encodings_load_as_text(pg, encoding, data):
    dataset = make_dataset(Mode.INCREMENTAL, encoding=encoding)

    load_bytes(pg, dataset, data, "one.csv")

    assert rows(pg, dataset, "L0", "b") == [("caf\u00e9 \u2013 \u20ac",)]


def test_a_byte_order_mark_is_not_part_of_the_first_value_without_header(pg):
    dataset = make_dataset(Mode.INCREMENTAL, columns="a:text", header=False)

    load_bytes(pg, dataset, "\ufeffx\r\ny\r\n".encode(), "one.csv")

    assert rows(pg, dataset, "L0", "a") == [("x",), ("y",)]


def test_an_undecodable_file_fails_with_its_line(pg):
    dataset = make_dataset(Mode.INCREMENTAL)

    with pytest.raises(
        LoadError, match=r'^bad\.csv: line 2: invalid byte sequence for encoding "UTF8"'
    ):
        load_bytes(pg, dataset, b"a,b\n1,caf\xe9\n", "bad.csv")


def test_a_file_not_in_an_encoding_transcoded_here_fails_naming_it(pg):
    dataset = make_dataset(Mode.INCREMENTAL, encoding="shift_jis")

    with pytest.raises(LoadError) as failure:
        load_bytes(pg, dataset, b"a,b\n1,\x81\n", "bad.csv")

    assert str(failure.value) == (
        "bad.csv: line 2: cannot be read as shift_jis (illegal multibyte sequence); "
        "encodings tried: utf-8, shift_jis"
    )
