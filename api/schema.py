"""The OpenAPI description of the API (drf-spectacular): the HAWK scheme and answer shapes.

The serializers here only describe JSON shapes for the schema; the views encode their
answers with orjson (``api.pages``).
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    inline_serializer,
)
from rest_framework import serializers

from api.dataset_endpoints import DATASET_ENDPOINTS, REFERENCE_POSTCODES, camel_case
from api.queries import PageQuery, PostcodeQuery
from pipelines.column_types import COLUMN_TYPES

HAWK_DESCRIPTION = (
    "HAWK (https://github.com/mozilla/hawk) with sha256. Sign the full URL, the method and, "
    "when a body is sent, its payload hash; every nonce is accepted once and timestamps may "
    "be off by the configured skew (60 s by default). Each answer to an authenticated "
    "request carries a `Server-Authorization` header that signs its body and Content-Type. "
    "A client may call an endpoint when its scopes contain `*` or the endpoint's scope."
)


class HawkScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.HawkAuthentication"
    name = "HAWK"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": HAWK_DESCRIPTION,
        }


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What was wrong with the request")


TYPE_NAMES = sorted(
    {kind.api_name for kind in COLUMN_TYPES.values()}
    | {f"{kind.api_name}[]" for kind in COLUMN_TYPES.values()}
)


class ColumnSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The column's name as stored")
    type = serializers.ChoiceField(choices=TYPE_NAMES, help_text="The column's type")


class TableStructureSerializer(serializers.Serializer):
    columns = ColumnSerializer(many=True, help_text="In table order, helper columns left out")


NEXT_HELP = (
    "The absolute URL of the following page (`?orientation=<o>&next-id=<id of its first "
    "row>`), or null on the last page"
)


def next_field() -> serializers.URLField:
    return serializers.URLField(allow_null=True, help_text=NEXT_HELP)


def tabular_page(name: str, headers_help: str) -> serializers.Serializer:
    return inline_serializer(
        name=f"{name}Tabular",
        fields={
            "headers": serializers.ListField(child=serializers.CharField(), help_text=headers_help),
            "values": serializers.ListField(
                child=serializers.ListField(child=serializers.JSONField(allow_null=True)),
                help_text="One list of values per row, in the order of headers",
            ),
            "next": next_field(),
        },
    )


def records_page(name: str, record: serializers.Field) -> serializers.Serializer:
    return inline_serializer(
        name=f"{name}Records",
        fields={
            "results": serializers.ListField(child=record, help_text="One object per row"),
            "next": next_field(),
        },
    )


def page_response(name: str, headers_help: str, record: serializers.Field) -> OpenApiResponse:
    return OpenApiResponse(
        response=PolymorphicProxySerializer(
            component_name=f"{name}Page",
            serializers=[tabular_page(name, headers_help), records_page(name, record)],
            resource_type_field_name=None,
        ),
        description=(
            "A page of rows ordered by id: `tabular` (the default) as headers and values, "
            "`records` as one object per row. Numerics are JSON numbers, dates YYYY-MM-DD, "
            "timestamps ISO 8601, NULL is null."
        ),
    )


# The serializer field of each JSON value shape (``ColumnType.json_value``).
JSON_VALUE_FIELDS = {
    "integer": serializers.IntegerField,
    "number": serializers.FloatField,
    "boolean": serializers.BooleanField,
    "date": serializers.DateField,
    "date-time": serializers.DateTimeField,
    "string": serializers.CharField,
}
VALUE_FIELDS = {kind.api_name: JSON_VALUE_FIELDS[kind.json_value] for kind in COLUMN_TYPES.values()}


def record_serializer(name: str, columns: list[tuple[str, str]]) -> type[serializers.Serializer]:
    """A record class (component ``<name>Record``): one nullable field per (key, API type)."""
    fields = {key: VALUE_FIELDS[kind](allow_null=True) for key, kind in columns}
    return type(f"{name}Record", (serializers.Serializer,), fields)


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    meanings = {
        400: "Malformed HAWK header or query parameter",
        401: "Missing, unknown or invalid HAWK credentials, bad MAC or payload hash, replayed "
        "nonce or stale timestamp (with `WWW-Authenticate: Hawk`)",
        403: "The client's scopes do not include this endpoint",
        404: "Unknown table, or a schema that is never served",
        410: "The table was replaced since the read began and the version named by "
        "`version` is no longer kept: start the read again from the first page",
        422: "The table has no (whole-number) id column",
    }
    return {
        status: OpenApiResponse(response=ErrorSerializer, description=meanings[status])
        for status in statuses
    }


SCHEMA = OpenApiParameter(
    "schema",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The dataset's schema, `<organisation>.<dataset>`",
)
TABLE = OpenApiParameter(
    "table", OpenApiTypes.STR, OpenApiParameter.PATH, description="`L0` or `L1`"
)


def component_name(scope: str) -> str:
    """``list_dit_baci`` -> ``ListDitBaci``: a name for the OpenAPI components of an endpoint."""
    name = camel_case(scope)
    return name[:1].upper() + name[1:]


def dataset_component_name(scope: str) -> str:
    return component_name(scope.removeprefix("list_"))


# Made once: a component is one class however many operations refer to it.
DATASET_RECORDS = {
    endpoint.scope: record_serializer(
        dataset_component_name(endpoint.scope), endpoint.typed_headers
    )
    for endpoint in DATASET_ENDPOINTS
}
REFERENCE_POSTCODE_RECORD = record_serializer(
    "ReferencePostcode", REFERENCE_POSTCODES.typed_headers
)


class DatasetEndpointSchema(AutoSchema):
    """The OpenAPI operation of a ``DatasetView``, from the endpoint its ``as_view`` was given:
    operation id and scope, its table, and the records with the endpoint's own columns."""

    def get_operation_id(self) -> str:
        return self.view.endpoint.scope

    def get_summary(self) -> str:
        return self.view.endpoint.description

    def get_description(self) -> str:
        endpoint = self.view.endpoint
        return f'Scope `{endpoint.scope}`. Table `"{endpoint.schema}"."{endpoint.table}"`.'

    def get_override_parameters(self) -> list:
        return [PageQuery]

    def get_response_serializers(self) -> dict:
        endpoint = self.view.endpoint
        keys = f"`{'`, `'.join(endpoint.headers)}`"
        record = DATASET_RECORDS[endpoint.scope]()
        return {
            200: page_response(dataset_component_name(endpoint.scope), keys, record),
            **error_responses(400, 401, 403, 404, 410),
        }


class PostcodeLookupSchema(AutoSchema):
    """The OpenAPI operation of a ``PostcodeLookupView``, under the scope its ``as_view`` was
    given."""

    def get_operation_id(self) -> str:
        return self.view.scope

    def get_summary(self) -> str:
        return "Look up one DIT reference postcode"

    def get_description(self) -> str:
        return (
            f"Scope `{self.view.scope}`. Spaces are removed from `postcode` and letter case is "
            "ignored. `values` (or `results`) is empty when the postcode is not known. No `next`."
        )

    def get_override_parameters(self) -> list:
        return [PostcodeQuery]

    def get_response_serializers(self) -> dict:
        answer = inline_serializer(
            name=f"{component_name(self.view.scope)}Answer",
            fields={
                "headers": serializers.ListField(child=serializers.CharField(), required=False),
                "values": serializers.ListField(
                    child=serializers.ListField(child=serializers.JSONField()), required=False
                ),
                "results": serializers.ListField(child=REFERENCE_POSTCODE_RECORD(), required=False),
            },
        )
        return {200: answer, **error_responses(400, 401, 403, 404)}
