"""The HAWK-authenticated endpoints: table structure, table data and the dataset endpoints.

DRF's defaults (dss/settings.py) authenticate every request with HAWK, allow clients holding
the view's ``scope`` and answer errors as ``{"error": ...}``. A view's OpenAPI text comes from
``extend_schema`` or, for the views that serve one endpoint per URL, from the schema class
that reads the endpoint given to ``as_view``.
"""

import logging
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.http import HttpResponse
from django.utils.encoding import escape_uri_path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.views import APIView

from api import pages, schema
from api.connection_loss import read_again_after
from api.dataset_endpoints import REFERENCE_POSTCODES, DatasetEndpoint
from api.errors import DatasetTableMismatch, UnprocessableEntity, table_not_found
from api.queries import TABULAR, PageQuery, PostcodeQuery, validated
from api.schema import DatasetEndpointSchema, PostcodeLookupSchema
from api.served_tables import ServedColumn, ServedTable, find_table

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


def next_url(request: Request, orientation: str, next_id: int | None) -> str | None:
    """The absolute URL of the page that starts at ``next_id`` (None when there is none)."""
    if next_id is None:
        return None
    query = urlencode({"orientation": orientation, "next-id": next_id})
    return f"{request.build_absolute_uri(escape_uri_path(request.path))}?{query}"


def id_checked(table: ServedTable) -> ServedTable:
    """``table``, after making sure it can be paged by its id (422 otherwise)."""
    key = table.column("id")
    if key is None:
        raise UnprocessableEntity("The table must have an id column")
    if key.base not in WHOLE_NUMBER_TYPES or key.is_array:
        raise UnprocessableEntity("The table's id column must hold whole numbers")
    return table


def page_response(
    request: Request,
    query: dict,
    table: ServedTable,
    columns: list[ServedColumn],
    headers: list[str],
    include_id: bool,
) -> HttpResponse:
    """A page of ``columns`` (after the id when ``include_id``) as ``query`` (a validated
    ``PageQuery``) asks."""
    start_id = query.get("start_id")
    page = pages.read_page(table, columns, start_id, settings.PAGINATION_SIZE)
    rows = page.rows if include_id else pages.without_id(page.rows)
    url = next_url(request, query["orientation"], page.next_id)
    encode = pages.tabular if query["orientation"] == TABULAR else pages.records
    return json_response(encode(headers, rows, url))


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
            "stored. Follow `next` until it is null."
        ),
        parameters=[*TABLE_PARAMETERS, PageQuery],
        responses={
            200: schema.page_response(
                "TableData",
                "`id`, then the table's other columns in table order",
                serializers.DictField(),
            ),
            **schema.error_responses(400, 401, 403, 404, 422),
        },
    )
    def get(self, request: Request, schema: str, table: str) -> HttpResponse:
        query = validated(PageQuery, request)
        found = find_table(schema, table)
        if found is None:
            raise table_not_found(schema, table)
        found = id_checked(found)
        columns = [column for column in found.columns if column.name != "id"]
        headers = ["id", *(column.name for column in columns)]
        return page_response(request, query, found, columns, headers, include_id=True)


def dataset_table(
    schema_name: str, table_name: str, names: list[str]
) -> tuple[ServedTable, list[ServedColumn]]:
    """The dataset table and its columns ``names`` (404 when it is not loaded yet)."""
    table = find_table(schema_name, table_name)
    if table is None:
        raise NotFound(f"The dataset {schema_name}.{table_name} has not been loaded yet")
    columns = [table.column(name) for name in names]
    missing = [name for name, column in zip(names, columns, strict=True) if column is None]
    if missing or table.column("id") is None:
        logger.error("dataset table %s.%s lacks columns %s", schema_name, table_name, missing)
        raise DatasetTableMismatch(
            f"The table of {schema_name}.{table_name} lacks the columns "
            f"{', '.join(missing or ['id'])}"
        )
    return id_checked(table), columns


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
        table, columns = dataset_table(endpoint.schema, endpoint.table, endpoint.column_names)
        return page_response(request, query, table, columns, endpoint.headers, endpoint.include_id)


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
