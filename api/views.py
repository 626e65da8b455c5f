"""The HAWK-authenticated endpoints: table structure, table data and the dataset endpoints.

DRF's defaults (dss/settings.py) authenticate every request with HAWK, allow clients holding
the view's ``scope`` and answer errors as ``{"error": ...}``. A view's OpenAPI text comes from
``extend_schema`` or, for the views that serve one endpoint per URL, from the schema class
that reads the endpoint given to ``as_view``.
"""

import logging
from collections.abc import Callable
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.db import ProgrammingError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.encoding import escape_uri_path
from drf_spectacular.utils import extend_schema
from psycopg.errors import UndefinedTable
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.views import APIView

from api import pages, schema
from api.connection_loss import read_again_after
from api.dataset_endpoints import REFERENCE_POSTCODES, DatasetEndpoint
from api.errors import DatasetTableMismatch, TableReplaced, UnprocessableEntity, table_not_found
from api.queries import TABULAR, PageQuery, PostcodeQuery, validated
from api.schema import DatasetEndpointSchema, PostcodeLookupSchema
from api.served_tables import ServedColumn, ServedTable, find_table, find_table_by_oid

logger = logging.getLogger(__name__)

WHOLE_NUMBER_TYPES = frozenset({"int2", "int4", "int8"})


class ReadView(APIView):
    """An endpoint that only reads: authenticated and allowed by DRF's defaults, it runs once
    more on a fresh connection when its database connection was lost."""

    def initial(self, request: Request, *args, **kwargs) -> None:
        self.reading = False
        super().initial(request, *args, **kwargs)
        # Authenticated and allowed: what follows only reads, and may be run again.
        self.reading = True

    def handle_exception(self, exc: Exception) -> HttpResponse:
        """A read whose database connection was lost runs once more on a fresh connection
        before the error is answered (503, see ``api.errors``)."""
        if self.reading:
            self.reading = False
            handler = getattr(self, self.request.method.lower(), self.http_method_not_allowed)
            try:
                return read_again_after(
                    exc, lambda: handler(self.request, *self.args, **self.kwargs)
                )
            except Exception as again:
                exc = again
        return super().handle_exception(exc)


def json_response(body: bytes) -> HttpResponse:
    return HttpResponse(body, content_type="application/json")


def next_url(request: Request, orientation: str, next_id: int | None, version: int) -> str | None:
    """The absolute URL of the page of ``version`` that starts at ``next_id`` (None when
    there is none)."""
    if next_id is None:
        return None
    query = urlencode({"orientation": orientation, "next-id": next_id, "version": version})
    return f"{request.build_absolute_uri(escape_uri_path(request.path))}?{query}"


def id_checked(table: ServedTable) -> ServedTable:
    """``table``, after making sure it can be paged by its id (422 otherwise)."""
    key = table.column("id")
    if key is None:
        raise UnprocessableEntity("The table must have an id column")
    if key.base not in WHOLE_NUMBER_TYPES or key.is_array:
        raise UnprocessableEntity("The table's id column must hold whole numbers")
    return table


# The columns a view serves from a table holding a version of what it serves, and their
# headers.
ColumnChoice = Callable[[ServedTable], tuple[list[ServedColumn], list[str]]]


def page_response(
    request: Request, query: dict, table: ServedTable, choose: ColumnChoice, include_id: bool
) -> HttpResponse:
    """A page, as ``query`` (a validated ``PageQuery``) asks, of the version of ``table`` that
    the read began on: the current one when ``query`` names none.

    The page is read from ``table`` first; a short page (the last, or none because ``table``
    no longer holds the version) is read again from the table that holds the version now.
    410 when the version is no longer kept.
    """
    version = pages.version_of(table, query.get("version"))
    columns, headers = choose(table)
    page = read_page(table, columns, query.get("start_id"), version)
    if page.next_id is None:
        holder = version_holder(version)
        if holder.identifier() != table.identifier():
            columns, headers = choose(holder)
            page = read_page(holder, columns, query.get("start_id"), version)
    rows = page.rows if include_id else pages.without_id(page.rows)
    url = next_url(request, query["orientation"], page.next_id, version.id)
    encode = pages.tabular if query["orientation"] == TABULAR else pages.records
    return json_response(encode(headers, rows, url))


def read_page(
    table: ServedTable, columns: list[ServedColumn], start_id: int | None, version: pages.Version
) -> pages.Page:
    try:
        return pages.read_page(table, columns, start_id, settings.PAGINATION_SIZE, version)
    except ProgrammingError as error:
        if not isinstance(error.__cause__, UndefinedTable):
            raise
        # A retained table dropped since it was found: its versions were no longer kept.
        raise replaced(version) from error


def version_holder(version: pages.Version) -> ServedTable:
    """The table that holds ``version``; 410 when the version is no longer kept."""
    oid = pages.kept_version_oid(version)
    holder = None if oid is None else find_table_by_oid(oid)
    if holder is None:
        raise replaced(version)
    return holder


def replaced(version: pages.Version) -> TableReplaced:
    return TableReplaced(
        f"The table {version.schema}.{version.name} was replaced since this read began "
        f"(version {version.id} is no longer kept): start the read again from the first page"
    )


TABLE_PARAMETERS = [schema.SCHEMA, schema.TABLE]


class TableStructureView(ReadView):
    scope = "table_structure"

    @extend_schema(
        operation_id="table_structure",
        summary="The columns of a dataset table and their types",
        description="Scope `table_structure`.",
        parameters=TABLE_PARAMETERS,
        responses={
            200: schema.TableStructureSerializer,
            **schema.error_responses(400, 401, 403, 404),
        },
    )
    def get(self, request: Request, schema: str, table: str) -> HttpResponse:
        found = find_table(schema, table)
        if found is None:
            raise table_not_found(schema, table)
        columns = [{"name": column.name, "type": column.api_type} for column in found.columns]
        return json_response(orjson.dumps({"columns": columns}))


class TableDataView(ReadView):
    scope = "table_data"

    @extend_schema(
        operation_id="table_data",
        summary="A page of a dataset table's rows",
        description=(
            "Scope `table_data`. Every column but the helper columns, `id` first, names as "
            "stored. Follow `next` until it is null: it names the version of the table the "
            "read began on, which stays readable for a while after a load replaces it."
        ),
        parameters=[*TABLE_PARAMETERS, PageQuery],
        responses={
            200: schema.page_response(
                "TableData",
                "`id`, then the table's other columns in table order",
                serializers.DictField(),
            ),
            **schema.error_responses(400, 401, 403, 404, 410, 422),
        },
    )
    def get(self, request: Request, schema: str, table: str) -> HttpResponse:
        query = validated(PageQuery, request)
        found = find_table(schema, table)
        if found is None:
            raise table_not_found(schema, table)
        return page_response(request, query, id_checked(found), every_column, include_id=True)


def every_column(table: ServedTable) -> tuple[list[ServedColumn], list[str]]:
    """The columns of ``table`` but id, and the headers: id, then theirs."""
    columns = [column for column in id_checked(table).columns if column.name != "id"]
    return columns, ["id", *(column.name for column in columns)]


def dataset_table(
    schema_name: str, table_name: str, names: list[str]
) -> tuple[ServedTable, list[ServedColumn]]:
    """The dataset table and its columns ``names`` (404 when it is not loaded yet)."""
    table = find_table(schema_name, table_name)
    if table is None:
        raise NotFound(f"The dataset {schema_name}.{table_name} has not been loaded yet")
    return table, named_columns(table, names, f"{schema_name}.{table_name}")


def named_columns(table: ServedTable, names: list[str], label: str) -> list[ServedColumn]:
    """The columns ``names`` of ``table`` (which serves ``label``), after checking that it has
    them and a whole-number id."""
    columns = [table.column(name) for name in names]
    missing = [name for name, column in zip(names, columns, strict=True) if column is None]
    if missing or table.column("id") is None:
        logger.error("dataset table %s lacks columns %s", label, missing)
        raise DatasetTableMismatch(
            f"The table of {label} lacks the columns {', '.join(missing or ['id'])}"
        )
    id_checked(table)
    return columns


class DatasetView(ReadView):
    """A paginated dataset endpoint: ``DatasetView.as_view(endpoint=...)`` serves one
    ``DatasetEndpoint`` under its scope."""

    endpoint: DatasetEndpoint | None = None
    schema = DatasetEndpointSchema()

    @property
    def scope(self) -> str:
        return self.endpoint.scope if self.endpoint else ""

    def get(self, request: Request) -> HttpResponse:
        query = validated(PageQuery, request)
        endpoint = self.endpoint
        table, _ = dataset_table(endpoint.schema, endpoint.table, endpoint.column_names)

        def choose(holder: ServedTable) -> tuple[list[ServedColumn], list[str]]:
            label = f"{endpoint.schema}.{endpoint.table}"
            return named_columns(holder, endpoint.column_names, label), endpoint.headers

        return page_response(request, query, table, choose, endpoint.include_id)


class PostcodeLookupView(ReadView):
    """One reference postcode, matched without regard to spaces and letter case:
    ``PostcodeLookupView.as_view(scope=...)`` serves one lookup endpoint."""

    scope = ""
    schema = PostcodeLookupSchema()

    def get(self, request: Request) -> HttpResponse:
        query = validated(PostcodeQuery, request)
        endpoint = REFERENCE_POSTCODES
        table, columns = dataset_table(endpoint.schema, endpoint.table, endpoint.column_names)
        rows = pages.without_id(pages.read_postcode(table, columns, query["postcode"]))
        if query["orientation"] == TABULAR:
            body = {"headers": endpoint.headers, "values": rows}
        else:
            body = {"results": pages.as_records(endpoint.headers, rows)}
        return json_response(orjson.dumps(body))


def unknown_endpoint(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """A path under /api/ that names no endpoint: the JSON 404 every API error is."""
    return JsonResponse({"error": "No API endpoint at this path"}, status=404)
