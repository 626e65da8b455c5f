"""The field cases (cases/README.md), each loaded with its right value, and beside each a
sibling made here: another source, another column type, another spelling of the fault."""

import datetime
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines import archives
from pipelines.catalogue import CATALOGUE
from pipelines.datasets import Column, Dataset, Mode
from pipelines.ingesting import ingest_sources
from pipelines.loading import LoadError
from pipelines.models import DatafileRegistry
from pipelines.sources import Catalogue, Source
from tests.pipelines import source_files
from tests.pipelines.conftest import load_bytes, make_dataset, rows, zip_bytes

CASES = Path(__file__).parent / "cases"


def case(path: str) -> bytes:
    return (CASES / path).read_bytes()


def dataset_of(*columns: Column, mode: Mode = Mode.INCREMENTAL, **options) -> Dataset:
    return make_dataset(mode, columns=columns, **options)


@pytest.fixture
def ingest(pg, settings, store):
    """Store files in a source's folder and run its ingest; returns the run."""

    def run(source: Source, files: dict[str, bytes], catalogue: Catalogue = CATALOGUE):
        for name, data in files.items():
            store(f"{source.folder}/{name}", data)
        [result] = ingest_sources(catalogue, [source.id], settings.DATASETS_FOLDER)
        return result

    return run


def registry(source_id: str) -> dict[str, tuple[str, str, str]]:
    return {
        entry.file_name: (entry.state, entry.error_message, entry.notes)
        for entry in DatafileRegistry.objects.filter(source=source_id)
    }


# dates-day-first

ORDERS = (Column("order_ref"), Column("placed_on", "date", date_format="%d/%m/%Y"))


@pytest.mark.parametrize("server_style", ["ISO, MDY", "SQL, DMY", "German, YMD"])
@pytest.mark.parametrize("mode", list(Mode))
def test_day_first_dates_load_as_declared_whatever_the_session_date_style(pg, mode, server_style):
    dataset = dataset_of(*ORDERS, Column("amount", "numeric"), mode=mode)
    pg.execute("SELECT set_config('DateStyle', %s, false)", (server_style,))

    load_bytes(pg, dataset, case("dates-day-first/input.csv"), "input.csv")

    assert rows(pg, dataset, "L0", "order_ref, placed_on") == [
        ("A-100", datetime.date(2020, 2, 1)),
        ("A-101", datetime.date(2020, 3, 12)),
        ("A-102", datetime.date(2020, 12, 31)),
    ]


def test_a_non_iso_date_in_a_column_without_a_format_is_refused(pg):
    dataset = make_dataset(Mode.INCREMENTAL, columns="order_ref placed_on:date amount:numeric")
    pg.execute("SET DateStyle = 'ISO, DMY'")  # the server's style does not decide

    with pytest.raises(LoadError) as failure:
        load_bytes(pg, dataset, case("dates-day-first/input-ambiguous.csv"), "input.csv")

    assert str(failure.value) == (
        'input.csv: line 2, column placed_on, value "01/02/2020": '
        'date/time field value out of range: "01/02/2020" (dates are read year first '
        "(ISO 8601); a column with other dates declares its format)"
    )


@pytest.mark.parametrize(
    ("value", "line"),
    [("31/13/2020", 3), ("2020-12-31", 3), ("31/02/2020", 3), ("1/2/20", 3), ("00/01/2020", 3)],
)
@pytest.mark.parametrize("mode", list(Mode))
def test_a_date_that_does_not_fit_its_declared_format_is_refused_naming_it(pg, mode, value, line):
    dataset = dataset_of(*ORDERS, mode=mode)
    load_bytes(pg, dataset, b"order_ref,placed_on\nA-1,01/01/2020\n", "good.csv")
    data = f"order_ref,placed_on\nA-2,02/01/2020\nA-3,{value}\n".encode()

    with pytest.raises(LoadError) as failure:
        load_bytes(pg, dataset, data, "bad.csv")

    assert str(failure.value) == (
        f'bad.csv: line {line}, column placed_on, value "{value}": '
        "does not fit the date format %d/%m/%Y"
    )
    assert rows(pg, dataset, "L0", "order_ref") == [("A-1",)]


def test_a_timestamp_column_declares_a_day_first_format_with_a_time(pg):
    dataset = dataset_of(
        Column("ref"), Column("seen_at", "timestamp", date_format="%d/%m/%Y %H:%M")
    )
    pg.execute("SET TimeZone = 'Europe/London'")

    # 01:30 on 29 March 2020 does not exist in London (clocks went forward): stored as written.
    load_bytes(pg, dataset, b'ref,seen_at\nx,29/03/2020 01:30\ny,""\n', "one.csv")

    assert rows(pg, dataset, "L0", "ref, seen_at") == [
        ("x", datetime.datetime(2020, 3, 29, 1, 30)),
        ("y", None),
    ]


# quoted-empty-typed


def test_quoted_empty_values_load_as_null_in_integer_and_numeric_columns(pg):
    dataset = make_dataset(
        Mode.INCREMENTAL,
        columns="reporter:integer year:integer product:integer rate:numeric note:text",
    )

    load_bytes(pg, dataset, case("quoted-empty-typed/input.csv"), "input.csv")

    assert rows(pg, dataset, "L0", "reporter, year, product, rate, note") == [
        (826, 2019, 10121, Decimal("3.5"), "ok"),
        (826, None, 10122, None, "missing year and rate"),
        (250, 2020, 10123, Decimal("0"), "ok"),
    ]


def test_quoted_empty_bound_rate_loads_as_null_in_the_world_bank_source(pg, ingest):
    source = CATALOGUE.get("world_bank.bound_rates")

    run = ingest(
        source, {"bound_rates_quoted.csv": case("quoted-empty-typed/bound_rates_quoted.csv")}
    )

    assert run.failures == []
    assert sorted(rows(pg, source.dataset, "L0", "product, bound_rate, total_number_of_lines")) == [
        (10121, Decimal("3.5"), 2),
        (10122, None, 1),
    ]


@pytest.mark.parametrize("mode", list(Mode))
def test_quoted_empty_values_are_null_in_every_typed_column_and_empty_in_text(pg, mode):
    dataset = make_dataset(
        mode,
        columns="t:text i:integer b:bigint n:numeric f:double_precision d:date s:timestamp "
        "ok:boolean".replace("double_precision", "numeric"),
    )

    load_bytes(
        pg,
        dataset,
        b't,i,b,n,f,d,s,ok\n"","","","","","","","f"\nx,1,2,3,4,2020-01-02,,t\n',
        "one.csv",
    )

    assert rows(pg, dataset, "L0", "t, i, b, n, f, d, s, ok") == [
        ("", None, None, None, None, None, None, False),
        ("x", 1, 2, Decimal(3), Decimal(4), datetime.date(2020, 1, 2), None, True),
    ]


def test_a_quoted_empty_value_in_a_text_column_of_a_source_forcing_nulls_is_null(pg, ingest):
    source = CATALOGUE.get("dit.reference_postcodes")

    ingest(source, {"snapshot1.csv": source_files.REFERENCE_POSTCODES})

    [(termination,)] = pg.execute(
        'SELECT date_of_termination FROM "dit.reference_postcodes"."L0" WHERE postcode = %s',
        ("HU4 7SW",),
    ).fetchall()
    assert termination is None


# header-drift


def test_an_ons_release_with_a_moved_column_loads_each_value_under_its_own_name(pg, ingest):
    source = CATALOGUE.get("ons.postcode_directory")

    run = ingest(source, {"ONSPD_FEB_2018_UK.zip": case("header-drift/ONSPD_FEB_2018_UK.zip")})

    assert run.failures == []
    assert rows(pg, source.dataset, "L0", "pcds, oslaua, osward, parish, stp") == [
        ("ZZ1 1AA", "E06000001", "E05000001", "E04000001", "STP1"),
        ("ZZ1 2AA", "E06000002", "E05000002", "E04000002", "STP2"),
        ("ZZ1 3AA", "E06000003", "E05000003", "E04000003", "STP3"),
    ]
    assert registry(source.id)["ONSPD_FEB_2018_UK.zip"] == ("processed", "", "")


def test_an_ons_release_with_new_columns_loads_and_lists_them_in_the_registry(pg, ingest):
    source = CATALOGUE.get("ons.postcode_directory")

    run = ingest(source, {"ONSPD_FEB_2022_UK.zip": case("header-drift/ONSPD_FEB_2022_UK.zip")})

    assert run.failures == []
    assert rows(pg, source.dataset, "L1", "pcds, oslaua, parish, publication_date") == [
        ("ZZ1 1AA", "E06000001", "E04000001", datetime.date(2022, 2, 1)),
        ("ZZ1 2AA", "E06000002", "E04000002", datetime.date(2022, 2, 1)),
        ("ZZ1 3AA", "E06000003", "E04000003", datetime.date(2022, 2, 1)),
    ]
    assert registry(source.id)["ONSPD_FEB_2022_UK.zip"] == (
        "processed",
        "",
        "ignored extra columns: oa21, lsoa21, msoa21",
    )
    assert run.notes == [("ONSPD_FEB_2022_UK.zip", "ignored extra columns: oa21, lsoa21, msoa21")]


def test_reference_postcodes_with_columns_in_another_order_and_spelling_load_by_name(pg, ingest):
    source = CATALOGUE.get("dit.reference_postcodes")
    header, *lines = source_files.REFERENCE_POSTCODES.decode().splitlines()
    names = header.split(",")
    order = list(reversed(range(len(names))))
    names = [names[i].upper().replace(" ", "_") for i in order]
    fields = [line.split('","') for line in lines]
    moved = "\n".join(
        [",".join(names)]
        + ['"' + '","'.join(row[i].strip('"') for i in order) + '"' for row in fields]
    )

    run = ingest(source, {"moved.csv": moved.encode() + b"\n"})

    assert run.failures == []
    assert rows(pg, source.dataset, "L1", "postcode, region_name, date_of_introduction") == [
        ("AB10 1AA", "Scotland", datetime.date(1980, 1, 1)),
        ("HU4 7SW", "Yorkshire and The Humber", datetime.date(2001, 6, 1)),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"t,hs6,i,j,v\n1,2,3,4,5\n", "bad.csv: header: missing column q"),
        (
            b"t,hs6,i,j,v,q,extra,more\n1,2,3,4,5,6,7,8\n",
            "bad.csv: header: unexpected columns 'extra', 'more'",
        ),
        (
            b"1995,10519,4,251,1.27,0.126\n",
            "bad.csv: no header row: line 1 ('1995,10519,4,251,1.27,0.126') names none of the "
            "columns t, hs6, i, j, v, q",
        ),
        (
            b"t,hs6,i,j,v,q,HS6\n1,2,3,4,5,6,7\n",
            "bad.csv: the header names column hs6 twice: 'hs6', 'HS6'",
        ),
    ],
    ids=["missing", "unexpected", "no header row", "twice"],
)
def test_a_header_that_does_not_name_the_columns_is_refused_and_changes_nothing(
    pg, ingest, data, message
):
    source = CATALOGUE.get("dit.baci")
    ingest(source, {"2019.csv": b"t,hs6,i,j,v,q\n2019,1,2,3,4,5\n"})

    run = ingest(source, {"bad.csv": data})

    assert run.failures == [("bad.csv", message)]
    assert rows(pg, source.dataset, "L0", "t") == [(2019,)]


# zip-several-members


@pytest.mark.parametrize("bundle", ["bundle_codes_first.zip", "bundle_years_first.zip"])
def test_every_year_of_a_baci_bundle_loads_in_name_order_as_one_load(pg, ingest, bundle):
    source = CATALOGUE.get("dit.baci")

    run = ingest(source, {bundle: case(f"zip-several-members/{bundle}")})

    assert run.failures == [] and run.rows_loaded == 4
    assert rows(pg, source.dataset, "L0", "datafile_created, t, hs6, j") == [
        (bundle, 2019, 10121, 8),
        (bundle, 2019, 10129, 12),
        (bundle, 2020, 10121, 8),
        (bundle, 2020, 20110, 40),
    ]
    assert len(rows(pg, source.dataset, "L1")) == 4


def test_a_bundle_with_a_bad_year_loads_no_year(pg, ingest):
    source = CATALOGUE.get("dit.baci")
    ingest(source, {"2018.csv": b"t,hs6,i,j,v,q\n2018,1,2,3,4,5\n"})
    bundle = zip_bytes(
        {
            "BACI_HS17_Y2019_V202301.csv": b"t,hs6,i,j,v,q\n2019,1,2,3,4,5\n",
            "BACI_HS17_Y2020_V202301.csv": b"t,hs6,i,j,v,q\n2020,x,2,3,4,5\n",
        }
    )

    run = ingest(source, {"bundle.zip": bundle})

    assert run.failures == [
        (
            "bundle.zip",
            'bundle.zip: BACI_HS17_Y2020_V202301.csv: line 2, column hs6, value "x": '
            'invalid input syntax for type integer: "x"',
        )
    ]
    assert rows(pg, source.dataset, "L0", "t") == [(2018,)]


def test_a_zip_with_no_member_the_source_takes_is_refused_naming_what_it_holds(pg, ingest):
    source = CATALOGUE.get("dit.baci")
    bundle = zip_bytes({"Readme.txt": b"x", "country_codes_V2023.csv": b"a\n1\n", "docs/": b""})

    run = ingest(source, {"codes.zip": bundle})

    [(name, message)] = run.failures
    assert message.startswith("codes.zip: the zip holds no member matching ")
    assert message.endswith("; it holds Readme.txt, country_codes_V2023.csv")


def test_a_zip_with_several_members_where_the_source_takes_one_is_refused(pg, ingest, settings):
    source = Source(id="test.things", dataset=make_dataset(Mode.INCREMENTAL), folder="test/things")
    bundle = zip_bytes({"b.csv": b"a,b\n1,x\n", "a.csv": b"a,b\n2,y\n", "README.md": b"#"})

    run = ingest(source, {"two.zip": bundle}, Catalogue([source]))

    assert run.failures == [
        ("two.zip", "two.zip: the zip holds 2 members of data where one is expected: a.csv, b.csv")
    ]


def test_a_zip_bomb_is_refused_before_it_is_decompressed(pg, ingest):
    source = CATALOGUE.get("dit.baci")
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("BACI_Y2019.csv", "w", force_zip64=True) as member,
    ):
        member.write(b"t,hs6,i,j,v,q\n")
        zeros = b"0" * (1 << 20)
        for _ in range(64):
            member.write(zeros)

    run = ingest(source, {"bomb.zip": buffer.getvalue()})

    [(name, message)] = run.failures
    assert message.startswith("bomb.zip: BACI_Y2019.csv: compressed 200 times or more (")
    assert message.endswith("); refused as a zip bomb")


def test_a_zip_larger_than_the_cap_once_decompressed_is_refused(pg, ingest, monkeypatch):
    monkeypatch.setattr(archives, "MAX_TOTAL_BYTES", 100)
    source = CATALOGUE.get("dit.baci")
    data = zip_bytes({"a/BACI_Y2019.csv": b"t,hs6,i,j,v,q\n" + b"1,2,3,4,5,6\n" * 10})

    run = ingest(source, {"big.zip": data})

    assert run.failures == [
        ("big.zip", "big.zip: a/BACI_Y2019.csv: the zip decompresses to more than 100 bytes")
    ]


def test_zips_nested_too_deep_are_refused(pg, ingest):
    source = CATALOGUE.get("dit.baci")
    data = zip_bytes({"baci.csv": source_files.BACI})
    for depth in range(3):
        data = zip_bytes({f"level{depth}.zip": data})

    run = ingest(source, {"deep.zip": data})

    assert run.failures == [
        ("deep.zip", "deep.zip: level2.zip/level1.zip/level0.zip: zips nested more than 3 deep")
    ]


# utf8-in-windows-1252-source

COMTRADE_NAMES = [
    (384, "C\u00f4te d'Ivoire", None),
    (531, "Cura\u00e7ao", None),
    (792, "T\u00fcrkiye", "Name changed \u2013 2022"),
]


def test_a_utf8_file_with_a_byte_order_mark_in_a_windows_1252_source_loads_as_utf8(pg, ingest):
    source = CATALOGUE.get("comtrade.country_code_and_iso")

    run = ingest(source, {"list.csv": case("utf8-in-windows-1252-source/input_utf8_bom.csv")})

    assert run.failures == []
    assert rows(pg, source.dataset, "L1", "cty_code, cty_name_english, cty_comments") == (
        COMTRADE_NAMES
    )


def test_a_utf8_file_without_a_byte_order_mark_in_a_windows_1252_source_loads_as_utf8(pg, ingest):
    source = CATALOGUE.get("comtrade.country_code_and_iso")
    data = case("utf8-in-windows-1252-source/input_utf8_bom.csv")[3:].replace(b"\r\n", b"\n")

    run = ingest(source, {"list.csv": data})

    assert run.failures == []
    assert rows(pg, source.dataset, "L1", "cty_code, cty_name_english, cty_comments") == (
        COMTRADE_NAMES
    )


@pytest.mark.parametrize("chunk_of_ascii_first", [False, True])
def test_a_windows_1252_file_loads_as_windows_1252_wherever_its_first_accent_is(
    pg, chunk_of_ascii_first
):
    dataset = make_dataset(Mode.INCREMENTAL, encoding="cp1252")
    filler = (
        b"".join(b"%d,plain\n" % number for number in range(5)) if chunk_of_ascii_first else b""
    )

    # Read 7 bytes at a time: with the filler, the first accent comes chunks after the start.
    load_bytes(
        pg, dataset, b"a,b\n" + filler + "9,caf\u00e9 \u2013 \u20ac\n".encode("cp1252"), "one.csv"
    )

    assert rows(pg, dataset, "L0", "b")[-1] == ("caf\u00e9 \u2013 \u20ac",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"a,b\n1,x\n2,\x81\xff\n",
            "bad.csv: line 3: cannot be read as cp1252 (character maps to <undefined>); "
            "encodings tried: utf-8, cp1252",
        ),
        (
            "a,b\n1,caf\u00e9\n".encode() + b"2,caf\xe9\n",
            "bad.csv: line 3: not UTF-8 (invalid continuation byte), though earlier lines are: "
            "the file mixes encodings; encodings tried: utf-8, cp1252",
        ),
        (
            b"\xef\xbb\xbfa,b\n1,x\n2,caf\xe9\n",
            'bad.csv: line 3: invalid byte sequence for encoding "UTF8": 0xe9 0x0a; '
            "encodings tried: utf-8 (its byte-order mark)",
        ),
    ],
    ids=["in neither", "utf-8 then windows-1252", "byte-order mark and windows-1252"],
)
def test_a_file_in_no_encoding_tried_is_refused_naming_its_line(pg, data, message):
    dataset = make_dataset(Mode.INCREMENTAL, encoding="cp1252")

    with pytest.raises(LoadError) as failure:
        load_bytes(pg, dataset, data, "bad.csv")

    # What follows is the detector's guess, if any (see the test after next).
    assert str(failure.value).startswith(message)


# mixed-line-endings


@pytest.mark.parametrize(
    "name", ["input_crlf_then_lf.csv", "input_lf_then_crlf.csv", "input_cr_only.csv"]
)
@pytest.mark.parametrize("mode", list(Mode))
def test_files_with_mixed_or_old_mac_line_endings_load_every_row(pg, mode, name):
    dataset = make_dataset(mode, columns="code label qty:integer")

    result = load_bytes(pg, dataset, case(f"mixed-line-endings/{name}"), name)

    expected = {
        "input_crlf_then_lf.csv": [("A1", "first", 1), ("A2", "second", 2), ("A3", "third", 3)],
        "input_lf_then_crlf.csv": [("A1", "first", 1), ("A2", "second", 2), ("A3", "third", 3)],
        "input_cr_only.csv": [("A1", "first", 1), ("A2", "two\rlines", 2), ("A3", "third", 3)],
    }[name]
    assert result.rows_read == 3
    assert rows(pg, dataset, "L0", "code, label, qty") == expected


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_a_line_break_inside_quotes_is_kept_exactly_among_mixed_line_ends(pg, eol):
    dataset = make_dataset(Mode.INCREMENTAL, columns="code label")
    others = [b"\n", b"\r\n", b"\r"]
    data = b"code,label" + eol
    data += b'A1,"one\r\ntwo\nthree\rfour"' + others[0]
    data += b'A2,"x' + eol + eol + b'y"' + others[1]
    data += b"A3,last" + others[2]

    load_bytes(pg, dataset, data, "mixed.csv")

    assert rows(pg, dataset, "L0", "code, label") == [
        ("A1", "one\r\ntwo\nthree\rfour"),
        ("A2", "x" + eol.decode() * 2 + "y"),
        ("A3", "last"),
    ]


def test_blank_lines_anywhere_are_skipped_and_counted(pg):
    dataset = make_dataset(Mode.INCREMENTAL)

    result = load_bytes(pg, dataset, b"a,b\n\n1,x\r\n\r\n\n2,y\n\n\n", "blank.csv")

    assert (result.rows_read, result.skipped_rows) == (2, 5)
    assert rows(pg, dataset, "L0", "a, b") == [(1, "x"), (2, "y")]


# excel-trailing-columns


@pytest.mark.parametrize("mode", list(Mode))
def test_trailing_unnamed_empty_columns_are_dropped_and_empty_rows_skipped(pg, mode):
    dataset = make_dataset(mode, columns="region month visits:integer")

    result = load_bytes(pg, dataset, case("excel-trailing-columns/input.csv"), "input.csv")

    assert (result.rows_read, result.skipped_rows) == (3, 2)
    assert result.notes == "skipped 2 row(s) with no value"
    assert rows(pg, dataset, "L0", "region, month, visits") == [
        ("North", "2024-01", 120),
        ("South", "2024-01", 98),
        ("East", "2024-01", 77),
    ]


@pytest.mark.parametrize("mode", list(Mode))
def test_a_value_in_a_column_with_no_header_is_refused_naming_it(pg, mode):
    dataset = make_dataset(mode, columns="region month visits:integer")
    data = b"region,month,visits,,\nNorth,2024-01,120,,\nSouth,2024-01,98,,oops\n"

    with pytest.raises(LoadError) as failure:
        load_bytes(pg, dataset, data, "input.csv")

    assert str(failure.value) == (
        'input.csv: line 3, column 5 (no header), value "oops": '
        "a column with no header holds a value"
    )


def test_the_registry_counts_the_rows_an_ingest_skipped(pg, ingest):
    source = CATALOGUE.get("world_bank.tariff")
    data = (
        source_files.TARIFF.replace(b"\r\n", b",,\r\n").replace(
            b"Nbr_Total_Lines,,", b"Nbr_Total_Lines,,"
        )
        + b",,,,,,,,\r\n"
    )

    run = ingest(source, {"tariff.csv": data})

    assert run.failures == []
    assert registry(source.id)["tariff.csv"] == (
        "processed",
        "",
        "skipped 1 row(s) with no value",
    )
    assert len(rows(pg, source.dataset, "L0")) == 3


# empty-files


def snapshot_source(delete_previous: bool = True) -> Source:
    dataset = make_dataset(
        Mode.SNAPSHOT,
        columns="code name",
        delete_previous=delete_previous,
        l1=(),
        name="countries",
    )
    return Source(id="test.countries", dataset=dataset, folder="test/countries")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.csv", case("empty-files/empty.csv"), "empty.csv: no data rows (the file is empty)"),
        ("header_only.csv", case("empty-files/header_only.csv"), "header_only.csv: no data rows"),
        ("blank.csv", b"\r\n", "blank.csv: no data rows (the file is empty)"),
        ("blank_rows.csv", b"code,name\n,\n\n", "blank_rows.csv: no data rows"),
        (
            "empty_member.zip",
            zip_bytes({"countries.csv": b""}),
            "empty_member.zip: countries.csv: no data rows (the file is empty)",
        ),
        (
            "header_only_member.zip",
            zip_bytes({"countries.csv": b"code,name\r\n"}),
            "header_only_member.zip: countries.csv: no data rows",
        ),
    ],
)
def test_a_file_with_no_data_rows_is_refused_and_deletes_nothing(pg, ingest, name, data, message):
    source = snapshot_source()
    catalogue = Catalogue([source])
    ingest(source, {"2024-01-full.csv": case("empty-files/full.csv")}, catalogue)
    before = rows(pg, source.dataset, "L0")

    run = ingest(source, {name: data}, catalogue)

    assert run.failures == [(name, message)]
    assert registry(source.id)[name] == ("failed", message, "")
    assert rows(pg, source.dataset, "L0") == before
    assert [code for (code,) in rows(pg, source.dataset, "L0", "code")] == ["GB", "FR", "DE"]


def test_a_first_file_with_no_data_rows_creates_no_table(pg):
    dataset = make_dataset(Mode.INCREMENTAL, columns="code name")

    with pytest.raises(LoadError, match="^header_only.csv: no data rows$"):
        load_bytes(pg, dataset, case("empty-files/header_only.csv"), "header_only.csv")

    assert pg.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s",
        (dataset.schema,),
    ).fetchone() == (0,)


# semicolon-decimal-comma (the reading layer's options for the upload journey)


def test_a_semicolon_file_with_decimal_commas_loads_its_amounts(pg):
    dataset = make_dataset(
        Mode.INCREMENTAL,
        columns="ville montant:numeric annee:integer",
        delimiter=";",
        decimal_comma=True,
    )

    load_bytes(pg, dataset, case("semicolon-decimal-comma/input.csv"), "input.csv")

    assert rows(pg, dataset, "L0", "ville, montant, annee") == [
        ("Lyon", Decimal("1234.56"), 2024),
        ("Nantes", Decimal("87.5"), 2024),
        ("Lille", Decimal("12"), 2023),
    ]


def test_a_number_that_is_not_written_with_a_decimal_comma_is_refused_naming_it(pg):
    dataset = make_dataset(
        Mode.SNAPSHOT, columns="ville montant:numeric", delimiter=";", decimal_comma=True
    )

    with pytest.raises(LoadError) as failure:
        load_bytes(pg, dataset, b"ville;montant\nLyon;1,234.56\n", "input.csv")

    assert str(failure.value) == (
        'input.csv: line 2, column montant, value "1,234.56": '
        "is not a number written with a decimal comma (1.234,56)"
    )


def test_a_whole_number_column_refuses_decimals_when_reading_decimal_commas(pg):
    dataset = make_dataset(
        Mode.INCREMENTAL, columns="ville annee:integer", delimiter=";", decimal_comma=True
    )

    with pytest.raises(LoadError) as failure:
        load_bytes(pg, dataset, b"ville;annee\nLyon;2.024\nNantes;87,5\n", "input.csv")

    assert str(failure.value) == (
        'input.csv: line 3, column annee, value "87,5": is not a whole number (1.234)'
    )


@pytest.mark.parametrize("kind, value", [("integer", "2.147.483.648"), ("bigint", "-" + "9" * 20)])
def test_a_whole_number_out_of_range_is_refused_naming_its_line_when_reading_decimal_commas(
    pg, kind, value
):
    # Converted after COPY, a number too large for its type would fail naming no line.
    dataset = make_dataset(
        Mode.INCREMENTAL, columns=f"ville n:{kind}", delimiter=";", decimal_comma=True
    )
    load_bytes(pg, dataset, b"ville;n\nLyon;7\n", "good.csv")

    with pytest.raises(LoadError) as failure:
        load_bytes(pg, dataset, f"ville;n\nLyon;1.000\nNantes;{value}\n".encode(), "input.csv")

    assert str(failure.value) == (
        f'input.csv: line 3, column n, value "{value}": is out of range for type {kind}'
    )
    assert rows(pg, dataset, "L0", "ville, n") == [("Lyon", 7)]


def test_a_windows_1252_file_in_a_utf8_source_is_refused_with_a_guess_of_its_encoding(pg):
    dataset = make_dataset(Mode.INCREMENTAL, columns="a b")
    text = "Der Flu\u00df flie\u00dft sch\u00f6n durch K\u00f6ln und D\u00fcsseldorf"
    data = ("a,b\n" + "".join(f"{n},{text}\n" for n in range(20))).encode("cp1252")

    with pytest.raises(LoadError) as failure:
        load_bytes(pg, dataset, data, "bad.csv")

    message = str(failure.value)
    assert message.startswith(
        'bad.csv: line 2: invalid byte sequence for encoding "UTF8": 0xdf 0x20; '
        "encodings tried: utf-8; it looks like "
    )
    guess = message.rsplit(" ", 1)[1]
    assert data.decode(guess).startswith("a,b\n0,Der Flu\u00df")
