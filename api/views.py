"""The HAWK-authenticated endpoints: table structure, table data and the dataset endpoints."""

import logging
from dataclasses import dataclass
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.http import HttpResponse
from django.utils.encoding import escape_uri_path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from api import pages, schema
from api.authentication import HawkAuthentication
from api.catalog import Column, Table, find_table
from api.connection_loss import read_again_after
from api.datasets import REFERENCE_POSTCODES, DatasetEndpoint, camel_case
from api.errors import (
    DatasetTableMismatch,
    UnprocessableEntity,
    json_error_handler,
    table_not_found,
)
from api.permissions import HasEndpointScope

logger = logging.getLogger(__name__)

TABULAR, RECORDS = "tabular", "records"
WHOLE_NUMBER_TYPES = frozenset({"int2", "int4", "int8"})


class HawkView(APIView):
    """An endpoint for HAWK clients holding ``scope``; errors answer ``{"error": ...}``."""

    authentication_classes = [HawkAuthentication]
    permission_classes = [HasEndpointScope]
    renderer_classes = [JSONRenderer]
    scope = ""

    def get_exception_handler(self):
        return json_error_handler

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


def orientation_of(request: Request) -> str:
    orientation = request.query_params.get("orientation", TABULAR)
    if orientation not in (TABULAR, RECORDS):
        raise ParseError(f"orientation must be {TABULAR} or {RECORDS}, not {orientation!r}")
    return orientation


def start_id_of(request: Request) -> int | None:
    value = request.query_params.get("next-id")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ParseError(f"next-id must be a whole number, not {value!r}") from None


def next_url(request: Request, orientation: str, next_id: int | None) -> str | None:
    """The absolute URL of the page that starts at ``next_id`` (None when there is none)."""
    if next_id is None:
        return None
    query = urlencode({"orientation": orientation, "next-id": next_id})
    return f"{request.build_absolute_uri(escape_uri_path(request.path))}?{query}"


def id_checked(table: Table) -> Table:
    """``table``, after making sure it can be paged by its id (422 otherwise)."""
    key = table.column("id")
    if key is None:
        raise UnprocessableEntity("The table must have an id column")
    if key.base not in WHOLE_NUMBER_TYPES or key.is_array:
        raise UnprocessableEntity("The table's id column must hold whole numbers")
    return table


@dataclass(frozen=True)
class PageQuery:
    """What a page request asks for: its orientation and the id to start from."""

    orientation: str
    start_id: int | None

    @classmethod
    def of(cls, request: Request) -> "PageQuery":
        """The request's page query; 400 when a parameter is not understood."""
        return cls(orientation=orientation_of(request), start_id=start_id_of(request))


def page_response(
    request: Request,
    query: PageQuery,
    table: Table,
    columns: list[Column],
    headers: list[str],
    include_id: bool,
) -> HttpResponse:
    """A page of ``columns`` (after the id when ``include_id``) as ``query`` asks."""
    page = pages.read_page(table, columns, query.start_id, settings.PAGINATION_SIZE)
    rows = page.rows if include_id else pages.without_id(page.rows)
    url = next_url(request, query.orientation, page.next_id)
    encode = pages.tabular if query.orientation == TABULAR else pages.records
    return json_response(encode(headers, rows, url))


TABLE_PARAMETERS = [schema.SCHEMA, schema.TABLE]


class TableStructureView(HawkView):
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


class TableDataView(HawkView):
    scope = "table_data"

    @extend_schema(
        operation_id="table_data",
        summary="A page of a dataset table's rows",
        description=(
            "Scope `table_data`. Every column but the helper columns, `id` first, names as "
            "stored. Follow `next` until it is null."
        ),
        parameters=[*TABLE_PARAMETERS, schema.ORIENTATION, schema.NEXT_ID],
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
        query = PageQuery.of(request)
        found = find_table(schema, table)
        if found is None:
            raise table_not_found(schema, table)
        found = id_checked(found)
        columns = [column for column in found.columns if column.name != "id"]
        headers = ["id", *(column.name for column in columns)]
        return page_response(request, query, found, columns, headers, include_id=True)


def dataset_table(schema_name: str, table_name: str, names: list[str]) -> tuple[Table, list]:
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


class DatasetView(HawkView):
    """A paginated dataset endpoint; ``dataset_view`` makes one per ``DatasetEndpoint``."""

    endpoint: DatasetEndpoint

    def get(self, request: Request) -> HttpResponse:
        query = PageQuery.of(request)
        endpoint = self.endpoint
        table, columns = dataset_table(endpoint.schema, endpoint.table, endpoint.column_names)
        return page_response(request, query, table, columns, endpoint.headers, endpoint.include_id)


def fresh_get(view: type[HawkView]):
    """A new function calling ``view.get``, to document per endpoint (extend_schema marks the
    function it decorates, which the endpoints' classes would otherwise share)."""

    def get(self, request: Request) -> HttpResponse:
        return view.get(self, request)

    return get


def component_name(scope: str) -> str:
    """``list_dit_baci`` -> ``ListDitBaci``: a name for the OpenAPI components of an endpoint."""
    name = camel_case(scope)
    return name[:1].upper() + name[1:]


def dataset_view(endpoint: DatasetEndpoint) -> type[DatasetView]:
    """The view class of ``endpoint``, documented with its own columns."""
    name = component_name(endpoint.scope.removeprefix("list_"))
    keys = endpoint.headers
    record = schema.record_serializer(name, endpoint.typed_headers)
    get = extend_schema(
        operation_id=endpoint.scope,
        summary=endpoint.description,
        description=f'Scope `{endpoint.scope}`. Table `"{endpoint.schema}"."{endpoint.table}"`.',
        parameters=[schema.ORIENTATION, schema.NEXT_ID],
        responses={
            200: schema.page_response(name, f"`{'`, `'.join(keys)}`", record()),
            **schema.error_responses(400, 401, 403, 404),
        },
    )(fresh_get(DatasetView))
    return type(
        f"{name}View", (DatasetView,), {"endpoint": endpoint, "scope": endpoint.scope, "get": get}
    )


class PostcodeLookupView(HawkView):
    """One reference postcode, matched without regard to spaces and letter case."""

    def get(self, request: Request) -> HttpResponse:
        postcode = request.query_params.get("postcode", "").replace(" ", "").lower()
        if not postcode:
            raise ParseError("No postcode specified")
        orientation = orientation_of(request)
        endpoint = REFERENCE_POSTCODES
        table, columns = dataset_table(endpoint.schema, endpoint.table, endpoint.column_names)
        rows = pages.without_id(pages.read_postcode(table, columns, postcode))
        if orientation == TABULAR:
            body = {"headers": endpoint.headers, "values": rows}
        else:
            body = {"results": pages.as_records(endpoint.headers, rows)}
        return json_response(orjson.dumps(body))


REFERENCE_POSTCODE_RECORD = schema.record_serializer(
    "ReferencePostcode", REFERENCE_POSTCODES.typed_headers
)


def postcode_lookup_view(scope: str) -> type[PostcodeLookupView]:
    get = extend_schema(
        operation_id=scope,
        summary="Look up one DIT reference postcode",
        description=(
            f"Scope `{scope}`. Spaces are removed from `postcode` and letter case is ignored. "
            "`values` (or `results`) is empty when the postcode is not known. No `next`."
        ),
        parameters=[schema.POSTCODE, schema.ORIENTATION],
        responses={
            200: inline_serializer(
                name=f"{component_name(scope)}Answer",
                fields={
                    "headers": serializers.ListField(child=serializers.CharField(), required=False),
                    "values": serializers.ListField(
                        child=serializers.ListField(child=serializers.JSONField()), required=False
                    ),
                    "results": serializers.ListField(
                        child=REFERENCE_POSTCODE_RECORD(), required=False
                    ),
                },
            ),
            **schema.error_responses(400, 401, 403, 404),
        },
    )(fresh_get(PostcodeLookupView))
    return type(f"{component_name(scope)}View", (PostcodeLookupView,), {"scope": scope, "get": get})
