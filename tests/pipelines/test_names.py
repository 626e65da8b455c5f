"""Names are measured in bytes: a derived column name is shortened and kept unique; a name
given in a definition that PostgreSQL would cut is refused when the definition is made."""

import csv
from pathlib import Path

import pytest

from pipelines.datasets import SERVICE_COLUMNS, Column, Dataset, L1Column, Mode
from pipelines.names import (
    MAX_IDENTIFIER_BYTES,
    RESERVED_COLUMNS,
    cut_to_bytes,
    derive_column_names,
    is_valid_column_name,
)
from pipelines.sources import Catalogue, Source
from tests.pipelines.conftest import load_bytes, make_dataset, rows

LONG_HEADERS = Path(__file__).parent / "cases" / "long_headers.csv"
# 63 characters, 69 bytes: six of them take two bytes in UTF-8.
FRENCH_63_CHARACTERS = "Nombre de ménages bénéficiaires au trimestre déclaré (révise).."


def long_headers() -> list[str]:
    with LONG_HEADERS.open(encoding="utf-8") as file:
        return next(csv.reader(file))


def test_the_sample_header_is_63_characters_and_69_bytes():
    assert len(FRENCH_63_CHARACTERS) == 63
    assert len(FRENCH_63_CHARACTERS.encode()) == 69


def test_long_headers_get_unique_names_of_at_most_63_bytes():
    names = derive_column_names(long_headers())

    assert names == [
        "area",
        "number_of_households_receiving_the_benefit_in_the_reporting_qua",
        # The two long headers share their first 63 bytes: the second gets a suffix.
        "number_of_households_receiving_the_benefit_in_the_reporting_q_1",
        "nombre_de_menages_beneficiaires_de_l_allocation_au_trimestre_de",
    ]
    assert all(is_valid_column_name(name) for name in names)


def test_a_name_of_63_characters_but_69_bytes_is_measured_in_bytes():
    [name] = derive_column_names([FRENCH_63_CHARACTERS])
    assert name == "nombre_de_menages_beneficiaires_au_trimestre_declare_revise"
    assert not is_valid_column_name("é" * 32)  # 32 characters, 64 bytes
    with pytest.raises(ValueError, match="69 bytes long; PostgreSQL names are at most 63"):
        Column(FRENCH_63_CHARACTERS)


def test_names_that_collide_only_after_cutting_get_suffixes_within_63_bytes():
    stem = "a" * 70
    names = derive_column_names([stem + "1", stem + "2", stem + "3", "a" * 63])

    # The header that is already a valid name keeps it; the cut ones give way.
    assert names == ["a" * 61 + "_1", "a" * 61 + "_2", "a" * 61 + "_3", "a" * 63]


def test_multibyte_names_are_cut_on_character_boundaries():
    assert cut_to_bytes("é" * 40, 63) == "é" * 31
    assert cut_to_bytes("abé", 3) == "ab"
    [name] = derive_column_names(["日本語の見出し" * 10])
    assert name == "column_1"  # nothing of it is [a-z0-9_]


def test_headers_are_lower_cased_and_other_characters_become_one_underscore():
    headers = ["Région (code)", "  Total £ ", "2020", "", "a--b", "Été", "Straße"]
    assert derive_column_names(headers) == [
        "region_code",
        "total",
        "c_2020",
        "column_4",
        "a_b",
        "ete",
        "stra_e",
    ]


def test_duplicates_get_the_first_free_suffix_and_valid_names_keep_theirs():
    assert derive_column_names(["a", "a", "a_1", "A", "b"]) == ["a", "a_2", "a_1", "a_3", "b"]


@pytest.mark.parametrize("reserved", sorted(RESERVED_COLUMNS))
def test_reserved_names_are_renamed(reserved):
    assert derive_column_names([reserved, reserved.upper()]) == [f"{reserved}_1", f"{reserved}_2"]
    assert not is_valid_column_name(reserved)


def test_names_already_taken_are_avoided():
    assert derive_column_names(["a", "b"], taken=["a"]) == ["a_1", "b"]


def test_derived_names_stay_unique_over_many_long_duplicates():
    names = derive_column_names(["x" * 100] * 150)
    assert len(set(names)) == 150
    assert all(len(name.encode()) <= MAX_IDENTIFIER_BYTES for name in names)
    assert names[-1] == "x" * 59 + "_149"


# Definitions


def test_a_column_name_given_in_a_definition_over_63_bytes_is_refused():
    with pytest.raises(ValueError, match="is 64 bytes long"):
        Column("é" * 32)
    with pytest.raises(ValueError, match="is 70 bytes long"):
        L1Column("a" * 70, "integer", "1")
    assert Column("é" * 31 + "a").name  # 63 bytes


@pytest.mark.parametrize("name", ["50%", "c%(x)s", "a\x00b", ""])
def test_a_column_name_the_engine_could_not_quote_is_refused(name):
    with pytest.raises(ValueError, match="column name: "):
        Column(name)
    assert derive_column_names([name]) in (["c_50"], ["c_x_s"], ["a_b"], ["column_1"])


def test_the_long_sample_headers_given_as_definition_names_are_refused():
    for header in long_headers()[1:]:
        with pytest.raises(ValueError, match="PostgreSQL names are at most 63 bytes"):
            Column(header)


def test_a_dataset_whose_schema_name_is_over_63_bytes_is_refused():
    with pytest.raises(ValueError, match="dataset schema name: .* is 64 bytes long"):
        Dataset("org", "d" * 60, Mode.SNAPSHOT, (Column("a"),))
    # Two such datasets would otherwise share their first 63 bytes, so one table.
    assert Dataset("org", "d" * 59, Mode.SNAPSHOT, (Column("a"),)).schema == "org." + "d" * 59


def test_two_sources_loading_into_one_schema_are_refused():
    dataset = make_dataset(name="shared")
    with pytest.raises(ValueError, match="sources 'a' and 'b' would both load into test.shared"):
        Catalogue([Source("a", dataset, "a"), Source("b", dataset, "b")])


def test_an_index_name_derived_from_a_long_column_is_checked_when_defined():
    column = "c" * 60
    with pytest.raises(ValueError, match=f"the index of L1 column '{column}'"):
        Dataset(
            "org",
            "d",
            Mode.SNAPSHOT,
            (Column(column),),
            l1_columns=(L1Column(column),),
            l1_indexes=(column,),
        )


def test_an_index_of_a_column_not_in_l1_is_refused():
    with pytest.raises(ValueError, match="indexed column 'b' is not an L1 column"):
        Dataset(
            "org",
            "d",
            Mode.SNAPSHOT,
            (Column("a"),),
            l1_columns=(L1Column("a"),),
            l1_indexes=("b",),
        )


@pytest.mark.parametrize(("mode", "most"), [(Mode.SNAPSHOT, 1596), (Mode.INCREMENTAL, 1598)])
def test_l0_may_have_1600_columns_counting_those_the_service_adds(mode, most):
    def columns(count: int) -> tuple[Column, ...]:
        return tuple(Column(f"c{number}") for number in range(count))

    assert len(Dataset("org", "wide", mode, columns(most)).columns) == most
    with pytest.raises(
        ValueError,
        match=(
            f"org.wide: L0 would have 1601 columns \\({most + 1} data columns and {1600 - most} "
            "the service adds\\); a PostgreSQL table holds at most 1600"
        ),
    ):
        Dataset("org", "wide", mode, columns(most + 1))


def test_l1_may_have_1600_columns_counting_those_the_service_adds():
    l1 = tuple(L1Column(f"c{number}", "integer", "1") for number in range(1599))
    with pytest.raises(ValueError, match="org.wide: L1 would have 1601 columns"):
        Dataset("org", "wide", Mode.SNAPSHOT, (Column("a"),), l1_columns=l1)


def test_a_dataset_of_1598_columns_loads(pg):
    """The widest incremental table PostgreSQL holds is made and loaded."""
    names = " ".join(f"c{number}:integer" for number in range(1598))
    dataset = make_dataset(Mode.INCREMENTAL, columns=names, name="widest")
    row = ",".join(str(number) for number in range(1598))
    load_bytes(pg, dataset, f"{','.join(dataset.column_names)}\n{row}\n".encode(), "w.csv")
    [(first, last)] = rows(pg, dataset, "L0", "c0, c1597")
    assert (first, last) == (0, 1597)


def test_derived_names_of_the_long_headers_load_into_distinct_columns(pg):
    with LONG_HEADERS.open(encoding="utf-8") as file:
        header, *data = list(csv.reader(file))
    names = derive_column_names(header)
    dataset = Dataset(
        "test",
        "long_headers",
        Mode.INCREMENTAL,
        (Column(names[0]), *(Column(name, "integer") for name in names[1:])),
    )
    body = "\n".join([",".join(names), *(",".join(row) for row in data)]) + "\n"
    load_bytes(pg, dataset, body.encode(), "long.csv")

    assert rows(pg, dataset, "L0", ", ".join(f'"{name}"' for name in names)) == [
        ("E06000001", 1200, 1180, 1175),
        ("E06000002", 950, 940, 941),
    ]


@pytest.mark.parametrize("mode", [Mode.SNAPSHOT, Mode.INCREMENTAL])
def test_the_listed_service_columns_are_the_ones_a_load_adds(pg, mode):
    l1 = (L1Column("a", "integer"),)
    dataset = make_dataset(mode, columns="a:integer", l1=l1, name="listed")
    load_bytes(pg, dataset, b"a\n1\n", "one.csv")

    for table in ("L0", "L1"):
        columns = [
            name
            for (name,) in pg.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = %s ORDER BY ordinal_position",
                (dataset.schema, table),
            )
        ]
        assert sorted(columns) == sorted([*SERVICE_COLUMNS[mode, table], "a"])
        assert set(SERVICE_COLUMNS[mode, table]) <= RESERVED_COLUMNS
