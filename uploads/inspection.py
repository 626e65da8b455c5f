"""What an uploaded file holds and how it will load: the verify page's inspection.

The stored file is read through the one reading layer (``pipelines.reading.read_rows``) and
only as far as its window: the first ``DSS_UPLOAD_INFERENCE_ROWS`` rows. From them come the
column types (``pipelines.type_inference``), the first rows shown, and the refusals a person
can act on. The delimiter, quote and encoding are guessed from the file's first bytes
(``pipelines.dialects``), the decimal separator from the numbers seen; each can be given.
"""

from dataclasses import dataclass, field

from django.conf import settings

from pipelines import storage
from pipelines.datasets import FileFormat
from pipelines.date_formats import UPLOAD_FORMATS
from pipelines.dialects import detect_delimiter, detect_encoding, detect_quote
from pipelines.names import INCREMENTAL_L0_COLUMNS, check_column_count, derive_column_names
from pipelines.reading import ReadError, TextRows, UndecodableBytes, read_rows
from pipelines.type_inference import TypeInference, layout_key
from uploads.failures import Place, undecodable, value_without_header, wrong_count
from uploads.models import PipelineDataFile
from uploads.workbooks import store_sheet_as_csv

# The spellings of "no value" that load as empty, besides the empty value itself.
NULL_VALUES = ("NULL", "None", "N/A")
DETECTION_SAMPLE_BYTES = 64 << 10
SAMPLE_ROWS = 10
COLUMN_SAMPLES = 5


@dataclass(frozen=True)
class InspectionOptions:
    """What the person chose on the verify page; None: detect it. ``decimal_separator`` is
    ``.`` or ``,``; ``sheet`` names a workbook's sheet (None: the first)."""

    delimiter: str | None = None
    quote: str | None = None
    encoding: str | None = None
    decimal_separator: str | None = None
    sheet: str | None = None


@dataclass
class InspectedColumn:
    """One column of the file: its header, the name it loads as, its inferred type, the
    format of its dates (``date_format``: one of ``UPLOAD_FORMATS``, None for ISO 8601 and
    other types) and the first rows' values.

    ``also_fits`` are the other formats that fit every value of a date or timestamp column
    (``MM/DD/YYYY`` beside a day-first guess); ``misfits`` the first value of the rows read
    that does not fit each layout (``pipelines.type_inference``), for ``misfit``.
    """

    position: int
    header: str
    name: str
    type: str
    samples: list[str] = field(default_factory=list)
    date_format: str | None = None
    also_fits: list[str] = field(default_factory=list)
    misfits: dict[str, tuple[int, str]] = field(default_factory=dict, repr=False)

    @property
    def renamed(self) -> bool:
        return self.name != self.header

    def misfit(self, kind: str, date_format: str | None) -> tuple[int, str] | None:
        """The first (data row number, value) read that does not fit ``kind`` (date or
        timestamp) with ``date_format`` (None: ISO 8601); None when every one fits."""
        return self.misfits.get(layout_key(kind, date_format))


@dataclass(frozen=True)
class ColumnChange:
    """A difference from the current version: ``kind`` is ``dropped``, ``added`` or ``type``."""

    name: str
    kind: str
    previous_type: str | None = None
    new_type: str | None = None

    @property
    def message(self) -> str:
        if self.kind == "dropped":
            return f"column {self.name} is in the current version but not in this file"
        if self.kind == "added":
            return f"column {self.name} is new"
        return f"column {self.name} changes type from {self.previous_type} to {self.new_type}"


@dataclass
class Inspection:
    """What inspection found. ``problem`` is empty for a file that can load, else the
    refusal's message (then ``columns`` may be empty). ``rows_seen`` counts the data rows
    read (at most the window); ``complete`` says the whole file was read."""

    delimiter: str
    quote: str
    encoding: str
    decimal_separator: str
    sheet: str = ""
    columns: list[InspectedColumn] = field(default_factory=list)
    sample_rows: list[list[str]] = field(default_factory=list)
    rows_seen: int = 0
    complete: bool = False
    current_columns: list[tuple[str, str]] = field(default_factory=list)
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def names_and_types(self) -> list[tuple[str, str]]:
        return [(column.name, column.type) for column in self.columns]


class InspectionRefused(ValueError):
    """A file that cannot load as it is; the message says what is wrong and where."""


def inspect_upload(
    data_file: PipelineDataFile, options: InspectionOptions | None = None
) -> Inspection:
    """Inspect the stored upload ``data_file`` (see the module docstring).

    A refusal (no header, no data rows, a row with another number of values, undecodable
    bytes, too many columns, too large a file) is returned in ``Inspection.problem``. A
    workbook's chosen sheet is stored as CSV first (``uploads.workbooks``).
    """
    options = options or InspectionOptions()
    if data_file.is_workbook and (
        not data_file.csv_key or options.sheet not in (None, data_file.sheet)
    ):
        try:
            store_sheet_as_csv(data_file, options.sheet)
        except ValueError as error:
            return Inspection(",", '"', "utf-8", ".", problem=str(error))
    key = data_file.data_key
    place = Place.of(data_file)
    with storage.open_file(key) as stream:
        head = stream.read(DETECTION_SAMPLE_BYTES)
    inspection = _detected(head, options, data_file.sheet)
    try:
        _check_size(data_file, place.file)
        file_format = upload_file_format(
            inspection.delimiter, inspection.quote, inspection.encoding, decimal_comma=False
        )
        with storage.open_file(key) as stream:
            _read_window(read_rows(stream, file_format, place.file), inspection, options, place)
    except UndecodableBytes as error:
        inspection.problem = f"{undecodable(place, error)}; choose the file's encoding"
        return inspection
    except (InspectionRefused, ReadError, ValueError) as error:
        inspection.problem = str(error)
        return inspection
    current = data_file.pipeline.current_version()
    if current is not None and current.pk != data_file.pk:
        inspection.current_columns = [tuple(pair) for pair in current.column_types]
    return inspection


def compare_columns(
    current: list[tuple[str, str]], new: list[tuple[str, str]]
) -> list[ColumnChange]:
    """The differences from ``current`` [name, type] pairs to ``new`` ones: dropped columns,
    changed types, then added columns."""
    before, after = dict(current), dict(new)
    changes = [ColumnChange(name, "dropped", kind) for name, kind in current if name not in after]
    changes += [
        ColumnChange(name, "type", before[name], kind)
        for name, kind in new
        if name in before and before[name] != kind
    ]
    changes += [ColumnChange(name, "added", None, kind) for name, kind in new if name not in before]
    return changes


def upload_file_format(
    delimiter: str, quote: str, encoding: str, decimal_comma: bool
) -> FileFormat:
    """How an upload is read and loaded: columns by position after the header line, the
    null spellings as empty, quoted empty text as NULL too."""
    return FileFormat(
        delimiter=delimiter,
        quote=quote,
        encoding=encoding,
        decimal_comma=decimal_comma,
        null_values=NULL_VALUES,
        columns_by_position=True,
        force_null=True,
    )


def _detected(head: bytes, options: InspectionOptions, sheet: str) -> Inspection:
    encoding = options.encoding or detect_encoding(head)
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    delimiter = options.delimiter or detect_delimiter(text)
    quote = options.quote or detect_quote(text, delimiter)
    return Inspection(delimiter, quote, encoding, options.decimal_separator or ".", sheet)


def _check_size(data_file: PipelineDataFile, label: str) -> None:
    size = storage.size(data_file.storage_key)
    limit = settings.UPLOAD_MAX_BYTES
    if size > limit:
        raise InspectionRefused(too_large_message(label, limit))


def too_large_message(label: str, limit: int) -> str:
    return f"{label}: the file is larger than {limit:,} bytes, the most an upload takes"


def _read_window(
    text_rows: TextRows, inspection: Inspection, options: InspectionOptions, place: Place
) -> None:
    """Read up to the window's rows into ``inspection``; ``InspectionRefused`` for a refusal."""
    label = place.file
    header = text_rows.header
    named = _named_width(header)
    _check_header(header, named, label)
    check_column_count(named, len(INCREMENTAL_L0_COLUMNS), f"{label}: the table")
    dot = TypeInference(named, decimal_comma=False, null_values=NULL_VALUES)
    comma = TypeInference(named, decimal_comma=True, null_values=NULL_VALUES)
    guess_comma = options.decimal_separator is None and inspection.delimiter != ","
    limit = settings.UPLOAD_INFERENCE_ROWS
    samples: list[list[str]] = []
    rows = 0
    complete = True
    for line, row in text_rows.rows:
        if rows >= limit:
            complete = False
            break
        rows += 1
        _check_row(row, header, named, rows, line, place)
        values = row[:named]
        dot.add(values)
        if guess_comma or options.decimal_separator == ",":
            comma.add(values)
        if len(samples) < SAMPLE_ROWS:
            samples.append(values)
    if rows == 0:
        raise InspectionRefused(f"{label}: no data rows (the file has only its header)")
    inspection.encoding = text_rows.encoding
    inferred = dot
    if options.decimal_separator == "," or (guess_comma and _comma_fits_better(dot, comma)):
        inspection.decimal_separator = ","
        inferred = comma
    headers = [value.strip() for value in header[:named]]
    names = derive_column_names(headers)
    types, formats = inferred.types, inferred.date_formats
    inspection.columns = [
        _inspected(inferred, index, headers[index], names[index], types[index], formats[index])
        for index in range(named)
    ]
    for values in samples[:COLUMN_SAMPLES]:
        for column, value in zip(inspection.columns, values, strict=True):
            column.samples.append(value)
    inspection.sample_rows = samples
    inspection.rows_seen = rows
    inspection.complete = complete


def _inspected(
    inferred: TypeInference,
    index: int,
    header: str,
    name: str,
    kind: str,
    date_format: str | None,
) -> InspectedColumn:
    fitting = [
        layout for layout in inferred.fitting_layouts(index, kind) if layout in UPLOAD_FORMATS
    ]
    return InspectedColumn(
        index + 1,
        header,
        name,
        kind,
        date_format=date_format,
        also_fits=[layout for layout in fitting if layout != date_format],
        misfits=inferred.misfits[index],
    )


def _named_width(header: list[str]) -> int:
    """The number of columns up to the last one with a header (trailing ones with no
    header are dropped when they hold no value)."""
    named = len(header)
    while named and not header[named - 1].strip():
        named -= 1
    return named


def _check_header(header: list[str], named: int, label: str) -> None:
    if named == 0:
        raise InspectionRefused(f"{label}: no header row (the first line is empty)")
    if all(_looks_like_data(value) for value in header[:named] if value.strip()):
        shown = ",".join(header[:named])[:120]
        raise InspectionRefused(
            f"{label}: no header row: the first line ({shown!r}) holds values, not column "
            "names; add a line naming the columns"
        )


def _looks_like_data(value: str) -> bool:
    """Whether a header field is a number, date or timestamp (a word such as ``yes`` or
    ``n`` may well name a column)."""
    inference = TypeInference(1)
    inference.add([value])
    return inference.types[0] in ("integer", "numeric", "date", "timestamp")


def _check_row(
    row: list[str], header: list[str], named: int, number: int, line: int, place: Place
) -> None:
    if len(row) != len(header):
        raise InspectionRefused(wrong_count(place, number, line, len(row), len(header)))
    for position in range(named, len(row)):
        if row[position].strip():
            raise InspectionRefused(
                value_without_header(place, number, line, row[position], position)
            )


def _comma_fits_better(dot: TypeInference, comma: TypeInference) -> bool:
    """A decimal comma when it makes some column a number that is text with a point."""
    return any(
        before == "text" and after in ("integer", "numeric")
        for before, after in zip(dot.types, comma.types, strict=True)
    ) and all(
        not (before in ("integer", "numeric") and after == "text")
        for before, after in zip(dot.types, comma.types, strict=True)
    )
