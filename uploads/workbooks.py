"""Excel workbooks (``.xlsx``) taken as uploads: a sheet stored as CSV beside the original.

The workbook is read in openpyxl's read-only (streaming) mode, row by row. Dates become ISO
8601 (a midnight time is a date), booleans ``true``/``false``, whole floats whole numbers.
"""

import csv
import io
import shutil
import tempfile
from datetime import date, datetime, time

from pipelines import storage
from uploads.models import PipelineDataFile


def store_sheet_as_csv(data_file: PipelineDataFile, sheet: str | None = None) -> str:
    """Store the workbook's ``sheet`` (None: the first) as UTF-8 CSV under
    ``<storage key>.csv``; record it on ``data_file`` and return the sheet's name.

    Raises ``ValueError`` for a file that is not a workbook or a sheet it does not have,
    naming the sheets it has.
    """
    import openpyxl  # only when a workbook is uploaded

    with tempfile.TemporaryFile() as local, tempfile.TemporaryFile() as out:
        with storage.open_file(data_file.storage_key) as stream:
            shutil.copyfileobj(stream, local)  # the zip reader needs to seek
        local.seek(0)
        try:
            workbook = openpyxl.load_workbook(local, read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises zipfile, KeyError and XML errors alike
            raise ValueError(
                f"{data_file.original_name}: not an Excel workbook ({error})"
            ) from None
        try:
            names = workbook.sheetnames
            chosen = sheet or names[0]
            if chosen not in names:
                raise ValueError(
                    f"{data_file.original_name}: no sheet {chosen!r}; its sheets are "
                    + ", ".join(repr(name) for name in names)
                )
            text = io.TextIOWrapper(out, encoding="utf-8", newline="")
            writer = csv.writer(text, lineterminator="\n")
            for row in workbook[chosen].iter_rows(values_only=True):
                writer.writerow([_text(value) for value in row])
            text.flush()
            out.seek(0)
            key = storage.save_stream(f"{data_file.storage_key}.csv", out)
            text.detach()
        finally:
            workbook.close()
    data_file.csv_key = key
    data_file.sheet = chosen
    data_file.save(update_fields=["csv_key", "sheet"])
    return chosen


def sheet_names(data_file: PipelineDataFile) -> list[str]:
    """The names of the workbook's sheets, in order."""
    import openpyxl

    with tempfile.TemporaryFile() as local:
        with storage.open_file(data_file.storage_key) as stream:
            shutil.copyfileobj(stream, local)
        local.seek(0)
        workbook = openpyxl.load_workbook(local, read_only=True)
        try:
            return list(workbook.sheetnames)
        finally:
            workbook.close()


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
