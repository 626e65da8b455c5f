"""Companies House bulk accounts (SOURCES.md §3.10): a zip of iXBRL/XBRL documents -> rows.

The zip is read member by member (spooled to local disk when storage cannot seek), each
document parsed with lxml and dropped before the next, so memory does not grow with the zip.
A document gives one row per reporting period it has values for (one row with no period when
it has none): the fields of its file name, its taxonomy, the attributes that hold for the
whole document, and the period's values.

A document that cannot be read (not well-formed XML, a name that does not follow the bulk
files' pattern, a value that is not a number or a date, a context that is not there) is left
out and reported with why; it never fails the zip.

Values are looked up by name, whatever the namespace prefix: ``EN(x)`` is an element whose
local name is x (XBRL); ``AV(x)`` one whose ``name`` attribute ends in ``:x`` (iXBRL).
"""

import posixpath
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from typing import IO

from dateutil import parser as date_parser
from lxml import etree

from pipelines.archives import is_junk, seekable
from pipelines.steps import Parsed

FILE_NAME = re.compile(r"^(Prod\d+_\d+)_([^_]+)_(\d{8})\.(html|xml)")
TAXONOMIES = (
    "http://www.xbrl.org/uk/fr/gaap/pt/2004-12-01",
    "http://www.xbrl.org/uk/gaap/core/2009-09-01",
    "http://xbrl.frc.org.uk/fr/2014-09-01/core",
)
# Neither entities nor anything over the network: documents come from outside.
XML_PARSER_OPTIONS = {"resolve_entities": False, "no_network": True, "load_dtd": False}

Period = tuple[str | None, str | None]


class DocumentError(ValueError):
    """A document that cannot be read; the message says why."""


@dataclass
class Document:
    """A parsed document's lookups: elements by local name and by ``name`` suffix, in
    document order, and each context's period."""

    root: etree._Element
    by_local: dict[str, list[etree._Element]] = field(default_factory=dict)
    by_name: dict[str, list[etree._Element]] = field(default_factory=dict)
    periods: dict[str, Period] = field(default_factory=dict)
    positions: dict[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, root: etree._Element) -> "Document":
        document = cls(root)
        for position, element in enumerate(root.iter()):
            if not isinstance(element.tag, str):
                continue  # comments, processing instructions
            document.positions[id(element)] = position
            document.by_local.setdefault(etree.QName(element).localname, []).append(element)
            name = element.get("name")
            if name and ":" in name:
                document.by_name.setdefault(name.rsplit(":", 1)[1], []).append(element)
        for context in document.by_local.get("context", []):
            document.periods[context.get("id")] = _period(context)
        return document

    def en(self, name: str) -> list[etree._Element]:
        return self.by_local.get(name, [])

    def av(self, name: str) -> list[etree._Element]:
        return self.by_name.get(name, [])

    def enav(self, name: str) -> list[etree._Element]:
        """EN(name) or AV(name), in document order."""
        found = {id(element) for element in self.en(name)}
        both = self.en(name) + [element for element in self.av(name) if id(element) not in found]
        if self.en(name) and self.av(name):
            both.sort(key=lambda element: self.positions[id(element)])
        return both

    def av_context(self, name: str, test: Callable[[str], bool]) -> list[etree._Element]:
        """AV(name) whose contextRef passes ``test``."""
        return [element for element in self.av(name) if test(element.get("contextRef") or "")]


Finder = Callable[[Document], list[etree._Element]]


def _en(name: str) -> Finder:
    return lambda document: document.en(name)


def _av(name: str) -> Finder:
    return lambda document: document.av(name)


def _enav(name: str) -> Finder:
    return lambda document: document.enav(name)


def _in_context(name: str, part: str, present: bool = True) -> Finder:
    return lambda document: document.av_context(name, lambda ref: (part in ref) == present)


def _text(element: etree._Element) -> str | None:
    text = "".join(element.itertext()).strip()
    return None if text in ("", "-") else text


def _string(element: etree._Element) -> str | None:
    text = _text(element)
    return None if text is None else text.replace("\n", " ").replace('"', "")


def _number(element: etree._Element) -> str | None:
    text = _text(element)
    if text is None:
        return None
    try:
        value = float(text.replace(",", ""))
        scale = int(element.get("scale") or 0)
    except ValueError:
        raise DocumentError(f"{text!r} is not a number") from None
    if element.get("sign") == "-":
        value = -value
    return str(value * 10**scale)


def _employees(element: etree._Element) -> str | None:
    text = _text(element)
    if text is not None and ": " in text:
        element = etree.Element("value")
        element.text = text.rsplit(": ", 1)[1]
    return _number(element)


def _date_text(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return date_parser.parse(text, default=_NO_DATE).date().isoformat()
    except (ValueError, OverflowError):
        raise DocumentError(f"{text!r} is not a date") from None


_NO_DATE = date_parser.parse("2000-01-01")


def _date(element: etree._Element) -> str | None:
    return _date_text(_text(element))


def _boolean(element: etree._Element) -> str | None:
    text = _text(element)
    return text if text in ("true", "false") else None


def _not_boolean(element: etree._Element) -> str | None:
    value = _boolean(element)
    return None if value is None else {"true": "false", "false": "true"}[value]


def _legal_name_span(document: Document) -> list[etree._Element]:
    spans = []
    for element in document.av("EntityCurrentLegalOrRegisteredName"):
        spans += [child for child in element.iter() if etree.QName(child).localname == "span"][:1]
    return spans


# Attributes that hold for the whole document: (column, [(finder, value parser), ...]).
GENERAL = (
    ("balance_sheet_date", [(_av("BalanceSheetDate"), _date), (_en("BalanceSheetDate"), _date)]),
    (
        "companies_house_registered_number",
        [
            (_av("UKCompaniesHouseRegisteredNumber"), _string),
            (_en("CompaniesHouseRegisteredNumber"), _string),
        ],
    ),
    (
        "entity_current_legal_name",
        [
            (_av("EntityCurrentLegalOrRegisteredName"), _string),
            (_en("EntityCurrentLegalName"), _string),
            (_legal_name_span, _string),
        ],
    ),
    (
        "company_dormant",
        [
            (_av("EntityDormantTruefalse"), _boolean),
            (_av("EntityDormant"), _boolean),
            (_en("CompanyDormant"), _boolean),
            (_en("CompanyNotDormant"), _not_boolean),
        ],
    ),
    (
        "average_number_employees_during_period",
        [
            (_av("AverageNumberEmployeesDuringPeriod"), _employees),
            (_av("EmployeesTotal"), _employees),
            (_en("AverageNumberEmployeesDuringPeriod"), _employees),
            (_en("EmployeesTotal"), _employees),
        ],
    ),
)


def _names(*names: str) -> list[Finder]:
    return [_enav(name) for name in names]


# Values per period: (column, finders in order); every value is a number.
PERIODICAL: tuple[tuple[str, list[Finder]], ...] = (
    (
        "tangible_fixed_assets",
        [*_names("FixedAssets", "TangibleFixedAssets"), _av("PropertyPlantEquipment")],
    ),
    ("debtors", _names("Debtors")),
    ("cash_bank_in_hand", [*_names("CashBankInHand"), _av("CashBankOnHand")]),
    ("current_assets", _names("CurrentAssets")),
    (
        "creditors_due_within_one_year",
        [_av("CreditorsDueWithinOneYear"), _in_context("Creditors", "WithinOneYear")],
    ),
    (
        "creditors_due_after_one_year",
        [_av("CreditorsDueAfterOneYear"), _in_context("Creditors", "AfterOneYear")],
    ),
    ("net_current_assets_liabilities", _names("NetCurrentAssetsLiabilities")),
    ("total_assets_less_current_liabilities", _names("TotalAssetsLessCurrentLiabilities")),
    (
        "net_assets_liabilities_including_pension_asset_liability",
        _names("NetAssetsLiabilitiesIncludingPensionAssetLiability", "NetAssetsLiabilities"),
    ),
    (
        "called_up_share_capital",
        [*_names("CalledUpShareCapital"), _in_context("Equity", "ShareCapital")],
    ),
    (
        "profit_loss_account_reserve",
        [
            *_names("ProfitLossAccountReserve"),
            _in_context("Equity", "RetainedEarningsAccumulatedLosses"),
        ],
    ),
    (
        "shareholder_funds",
        [*_names("ShareholderFunds"), _in_context("Equity", "segment", present=False)],
    ),
    (
        "turnover_gross_operating_revenue",
        _names("TurnoverGrossOperatingRevenue", "TurnoverRevenue"),
    ),
    ("other_operating_income", _names("OtherOperatingIncome", "OtherOperatingIncomeFormat2")),
    ("cost_sales", _names("CostSales")),
    ("gross_profit_loss", _names("GrossProfitLoss")),
    ("administrative_expenses", _names("AdministrativeExpenses")),
    ("raw_materials_consumables", _names("RawMaterialsConsumables", "RawMaterialsConsumablesUsed")),
    ("staff_costs", _names("StaffCosts", "StaffCostsEmployeeBenefitsExpense")),
    (
        # The original's name is 71 bytes; PostgreSQL cut it to these 63 in the original table.
        "depreciation_other_amounts_written_off_tangible_intangible_fixe",
        _names(
            "DepreciationOtherAmountsWrittenOffTangibleIntangibleFixedAssets",
            "DepreciationAmortisationImpairmentExpense",
        ),
    ),
    (
        "other_operating_charges_format2",
        _names("OtherOperatingChargesFormat2", "OtherOperatingExpensesFormat2"),
    ),
    ("operating_profit_loss", _names("OperatingProfitLoss")),
    (
        "profit_loss_on_ordinary_activities_before_tax",
        _names("ProfitLossOnOrdinaryActivitiesBeforeTax"),
    ),
    (
        "tax_on_profit_or_loss_on_ordinary_activities",
        _names(
            "TaxOnProfitOrLossOnOrdinaryActivities",
            "TaxTaxCreditOnProfitOrLossOnOrdinaryActivities",
        ),
    ),
    ("profit_loss_for_period", _names("ProfitLoss", "ProfitLossForPeriod")),
)

FILE_COLUMNS = ("run_code", "company_id", "date", "file_type", "taxonomy")
COLUMNS = (
    *FILE_COLUMNS,
    "period_start",
    "period_end",
    *(name for name, _ in GENERAL),
    *(name for name, _ in PERIODICAL),
)
COLUMN_TYPES = {
    "date": "date",
    "period_start": "date",
    "period_end": "date",
    "balance_sheet_date": "date",
    "company_dormant": "boolean",
    "average_number_employees_during_period": "numeric",
    **{name: "numeric" for name, _ in PERIODICAL},
}


def _period(context: etree._Element) -> Period:
    def child(name: str) -> str | None:
        for element in context.iter():
            if isinstance(element.tag, str) and etree.QName(element).localname == name:
                return _date_text(_text(element))
        return None

    instant = child("instant")
    return (instant, instant) if instant is not None else (child("startDate"), child("endDate"))


def document_rows(root: etree._Element, member_name: str) -> list[list[str | None]]:
    """The rows of one parsed document, ``COLUMNS`` in order; ``DocumentError`` when it
    cannot be read."""
    match = FILE_NAME.match(posixpath.basename(member_name))
    if match is None:
        raise DocumentError("the name does not follow Prod<run>_<n>_<company>_<YYYYMMDD>.html|xml")
    run_code, company_id, day, file_type = match.groups()
    document = Document.of(root)
    namespaces = set(root.nsmap.values())
    taxonomy = ";".join(uri for uri in TAXONOMIES if uri in namespaces)
    general = [_general(document, candidates) for _, candidates in GENERAL]
    periods: dict[Period, dict[str, str | None]] = {}
    for column, finders in PERIODICAL:
        for finder in finders:
            for element in finder(document):
                reference = element.get("contextRef")
                if reference is None:
                    continue
                if reference not in document.periods:
                    raise DocumentError(f"{column}: context {reference!r} is not in the document")
                values = periods.setdefault(document.periods[reference], {})
                if values.get(column) is None:
                    values[column] = _number(element)
    file_fields = [
        run_code,
        company_id,
        date(int(day[:4]), int(day[4:6]), int(day[6:])).isoformat(),
    ]
    head = [*file_fields, file_type, taxonomy]
    rows = []
    for period, values in (periods or {(None, None): {}}).items():
        rows.append([*head, *period, *general, *(values.get(name) for name, _ in PERIODICAL)])
    return rows


def _general(document: Document, candidates) -> str | None:
    for finder, parse in candidates:
        found = finder(document)
        if found:
            value = parse(found[-1])
            if value is not None:
                return value
    return None


def parse_accounts(stream: IO[bytes], name: str) -> Parsed:
    """The rows of every document of the bulk zip ``stream``; the documents left out, with
    why, in ``skipped`` (filled as the rows are read)."""
    parsed = Parsed(rows=iter(()))
    parsed.rows = _rows(stream, parsed)
    return parsed


def _rows(stream: IO[bytes], parsed: Parsed) -> Iterator[list[str | None]]:
    parser = etree.XMLParser(**XML_PARSER_OPTIONS)
    with ExitStack() as stack:
        archive = stack.enter_context(zipfile.ZipFile(seekable(stream, stack)))
        for info in archive.infolist():
            if info.is_dir() or is_junk(info.filename):
                continue
            try:
                with archive.open(info) as member:
                    root = etree.parse(member, parser).getroot()
                rows = document_rows(root, info.filename)
            except (etree.LxmlError, DocumentError) as error:
                parsed.skipped.append((info.filename, str(error) or type(error).__name__))
                continue
            yield from rows
