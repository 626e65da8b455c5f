"""Sources defined in admin (``pipelines.models.DefinedSource``): how a row becomes a
``Source``, how a row is checked before it is saved, and the catalogue that runs use (the
built-in sources, then the defined ones).

A defined source is read like a built-in one: its columns are ``Column``s and its file
format a ``FileFormat``, so every limit a built-in definition meets (names in bytes, types,
column counts) is checked by the same code. Its L1 expressions are parsed and tried first
(``pipelines.expressions``); what runs is the expression as the parser prints it back.
"""

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from psycopg import Error as PostgresError

from pipelines.catalogue import CATALOGUE
from pipelines.datasets import SERVICE_COLUMNS, Column, Dataset, FileFormat, L1Column, Mode
from pipelines.expressions import check_l1_expression, try_l1_expressions
from pipelines.models import DefinedSource
from pipelines.sources import Catalogue, FixedUrl, Listing, Source, StoredName

logger = logging.getLogger(__name__)

COLUMN_KEYS = {"name", "type", "header", "date_format"}
L1_COLUMN_KEYS = {"name", "type", "expression"}


def current_catalogue() -> Catalogue:
    """The built-in sources, then every defined source that still builds and fits (one that
    does not, e.g. after a release added a built-in source of the same schema, is logged
    and left out; the others run)."""
    sources = defined_sources()
    try:
        return CATALOGUE.extended(sources)
    except ValueError:
        pass
    catalogue = CATALOGUE
    for source in sources:
        try:
            catalogue = catalogue.extended([source])
        except ValueError as error:
            logger.error("defined source %s is left out: %s", source.id, error)
    return catalogue


def defined_sources(rows: Iterable[DefinedSource] | None = None) -> list[Source]:
    sources = []
    for row in DefinedSource.objects.all() if rows is None else rows:
        try:
            sources.append(to_source(row))
        except DefinitionError as error:
            logger.error("defined source %s is left out: %s", row.source_id, error)
    return sources


def defined_schemas() -> set[str]:
    """The schemas of the defined sources, ``"<organisation>.<dataset>"``."""
    return {
        f"{organisation}.{dataset}"
        for organisation, dataset in DefinedSource.objects.values_list("organisation", "dataset")
    }


class DefinitionError(ValueError):
    """What is wrong with a defined source, and the form ``field`` it belongs to."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def to_source(row: DefinedSource) -> Source:
    """The ``Source`` a row defines; ``DefinitionError`` names what is wrong and where."""
    dataset = _dataset(row)
    with _field("depends_on"):
        depends_on = tuple(_string_list(row.depends_on))
    with _field("url"):
        origin = _origin(row)
    return Source(
        id=row.source_id,
        folder=f"{row.organisation}/{row.dataset}",
        dataset=dataset,
        origin=origin,
        trigger_dataflow=row.trigger_dataflow,
        depends_on=depends_on,
    )


@contextmanager
def _field(name: str) -> Iterator[None]:
    """Turn a ``ValueError`` or ``LookupError`` (an unknown encoding) into a
    ``DefinitionError`` of form field ``name``."""
    try:
        yield
    except DefinitionError:
        raise
    except (ValueError, LookupError) as error:
        raise DefinitionError(name, str(error).strip('"')) from None


def _dataset(row: DefinedSource) -> Dataset:
    with _field("columns"):
        columns = tuple(_column(spec, COLUMN_KEYS, Column) for spec in _spec_list(row.columns))
    l0_names = {column.name for column in columns} | set(SERVICE_COLUMNS[Mode(row.mode), "L0"])
    with _field("l1_columns"):
        l1_columns = tuple(_l1_column(spec, l0_names) for spec in _spec_list(row.l1_columns))
    with _field("encoding"):
        file_format = FileFormat(
            delimiter=row.delimiter,
            quote=row.quote,
            encoding=row.encoding,
            force_null=row.force_null,
            member_pattern=row.member_pattern or None,
            many_members=row.many_members,
            ignore_extra_columns=row.ignore_extra_columns,
            decimal_comma=row.decimal_comma,
        )
    try:
        return Dataset(
            organisation=row.organisation,
            name=row.dataset,
            mode=Mode(row.mode),
            columns=columns,
            l1_columns=l1_columns,
            file_format=file_format,
        )
    except ValueError as error:
        raise DefinitionError(_dataset_field(str(error)), str(error)) from None


def _dataset_field(message: str) -> str:
    """The form field a ``Dataset`` error is about, from what its message names."""
    if "schema name" in message or "organisation and dataset" in message:
        return "dataset"
    if ": L1" in message or "L1 column" in message:
        return "l1_columns"
    return "columns"


def _spec_list(value: object) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError('a list of objects, e.g. [{"name": "code", "type": "integer"}]')
    return value


def _column(spec: dict, keys: set[str], kind: type[Column]) -> Column:
    unknown = set(spec) - keys
    if unknown:
        raise ValueError(f"column {spec.get('name')!r}: unknown keys {sorted(unknown)}")
    if not isinstance(spec.get("name"), str):
        raise ValueError(f"a column needs a name: {spec}")
    return kind(**{"type": "text", **spec})


def _l1_column(spec: dict, l0_names: set[str]) -> L1Column:
    spec = dict(spec)
    expression = spec.get("expression")
    if expression is not None:
        try:
            # Checked text, printed back by the parser; % doubled because the loader's L1
            # statement runs with parameters.
            spec["expression"] = check_l1_expression(str(expression), l0_names).replace("%", "%%")
        except ValueError as error:
            raise ValueError(f"L1 column {spec.get('name')!r}: {error}") from None
    return _column(spec, L1_COLUMN_KEYS, L1Column)


def _string_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError('a list of source ids, e.g. ["dit.baci"]')
    return value


def _origin(row: DefinedSource) -> Listing | FixedUrl | None:
    if row.origin == DefinedSource.Origin.BY_HAND:
        return None
    if not row.url:
        raise ValueError("a fetched source needs its URL")
    if not row.file_name_pattern or not row.file_date_format:
        raise DefinitionError(
            "file_name_pattern",
            "a fetched source needs the name pattern of its files and its date format",
        )
    stored_name = StoredName(row.file_name_pattern, row.file_date_format)
    if row.origin == DefinedSource.Origin.FIXED_URL:
        return FixedUrl(url=row.url, stored_name=stored_name)
    return Listing(
        url=row.url,
        link_pattern=row.link_pattern,
        link_date_format=row.link_date_format,
        download_pattern=row.download_pattern or None,
        stored_name=stored_name,
    )


def validate_definition(row: DefinedSource) -> None:
    """Raise ``ValidationError`` (by form field) for a definition that would not load: bad
    patterns or formats, names or types the loader refuses, L1 expressions that are not
    allowed or fail on an empty L0, dependencies that are unknown or circular, a schema
    another source loads into."""
    errors: dict[str, list[str]] = {}
    _check_patterns(row, errors)
    if errors:
        raise ValidationError(errors)
    try:
        source = to_source(row)
    except DefinitionError as error:
        raise ValidationError({error.field: str(error)}) from None
    if source.id in CATALOGUE:
        raise ValidationError({"dataset": f"{source.id} is a built-in source's; choose another"})
    others = defined_sources(DefinedSource.objects.exclude(pk=row.pk))
    try:
        CATALOGUE.extended([*others, source])
    except (ValueError, KeyError) as error:
        field = "depends_on" if "depend" in str(error) else "dataset"
        raise ValidationError({field: str(error).strip('"')}) from None
    if source.dataset.has_l1:
        _try_l1(source.dataset)


def _check_patterns(row: DefinedSource, errors: dict[str, list[str]]) -> None:
    for field in ("link_pattern", "download_pattern", "member_pattern"):
        pattern = getattr(row, field)
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            errors.setdefault(field, []).append(f"{pattern!r} does not compile: {error}")
            continue
        if field == "link_pattern" and row.origin == DefinedSource.Origin.LISTING:
            if not pattern:
                errors.setdefault(field, []).append("a listing needs the pattern of its links")
            elif "date" not in compiled.groupindex:
                errors.setdefault(field, []).append(
                    "the pattern needs a (?P<date>...) group for the date format to read"
                )
            if not row.link_date_format:
                errors.setdefault("link_date_format", []).append(
                    "a listing needs the strptime format of its links' dates"
                )
    if row.file_name_pattern and row.file_name_pattern.count("{date}") != 1:
        errors.setdefault("file_name_pattern", []).append("the name needs one {date}")


def _try_l1(dataset: Dataset) -> None:
    """Run the L1 step on an empty L0, rolled back; a failure is the L1 columns' error."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")  # a transaction is open: the trial is a savepoint
            try_l1_expressions(connection.connection, dataset)
    except PostgresError as error:
        message = getattr(error.diag, "message_primary", None) or str(error)
        raise ValidationError(
            {"l1_columns": f"the L1 expressions fail on an empty L0: {message}"}
        ) from None
