"""The query parameters of the API's endpoints, validated by DRF serializers.

The same serializers describe the parameters in the OpenAPI document. A parameter that is not
understood answers 400 with a message naming it and the value given.
"""

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.request import Request

TABULAR, RECORDS = "tabular", "records"
# An id past PostgreSQL's bigint range cannot be in any table.
LARGEST_ID = 2**63 - 1


class WholeNumberField(serializers.IntegerField):
    """An integer parameter whose errors name the parameter and echo the value."""

    def to_internal_value(self, data: Any) -> int:
        try:
            return int(data)
        except (TypeError, ValueError):
            self.fail("invalid", input=data)


def orientation_field() -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=[TABULAR, RECORDS],
        default=TABULAR,
        help_text="The answer's shape",
        error_messages={
            "invalid_choice": f"orientation must be {TABULAR} or {RECORDS}, not {{input!r}}"
        },
    )


class PageQuery(serializers.Serializer):
    """``orientation`` (default ``tabular``), ``next-id`` (as ``start_id``, or absent) and
    ``version`` (the version of the table a read began on, or absent: the current one)."""

    orientation = orientation_field()

    def get_fields(self) -> dict[str, serializers.Field]:
        # "next-id" is not a Python name, so it cannot be declared as a class attribute.
        fields = super().get_fields()
        fields["next-id"] = WholeNumberField(
            source="start_id",
            required=False,
            min_value=-LARGEST_ID - 1,
            max_value=LARGEST_ID,
            help_text="Serve rows whose id is at least this (taken from a page's `next`)",
            error_messages={
                "invalid": "next-id must be a whole number, not {input!r}",
                "min_value": "next-id must be at least {min_value}",
                "max_value": "next-id must be at most {max_value}",
            },
        )
        fields["version"] = WholeNumberField(
            required=False,
            min_value=1,
            max_value=LARGEST_ID,
            help_text=(
                "The version of the table a read began on (taken from a page's `next`); a "
                "version no longer kept answers 410 and the read starts again"
            ),
            error_messages={
                "invalid": "version must be a whole number, not {input!r}",
                "min_value": "version must be at least {min_value}",
                "max_value": "version must be at most {max_value}",
            },
        )
        return fields


class PostcodeQuery(serializers.Serializer):
    """``postcode`` (spaces removed, lower-cased) and ``orientation``."""

    postcode = serializers.CharField(
        help_text="The postcode to look up; spaces and letter case do not matter",
        error_messages={"required": "No postcode specified", "blank": "No postcode specified"},
    )
    orientation = orientation_field()

    def validate_postcode(self, value: str) -> str:
        postcode = value.replace(" ", "").lower()
        if not postcode:
            raise serializers.ValidationError("No postcode specified")
        return postcode


def validated(query: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The request's query parameters as ``query`` reads them; ParseError (400) naming the
    first parameter that is not understood."""
    # A plain dict (the last value of a repeated parameter), so that an empty value is checked
    # like any other instead of being taken as absent.
    serializer = query(data=request.query_params.dict())
    if not serializer.is_valid():
        first = next(iter(serializer.errors.values()))
        raise ParseError(str(first[0]))
    return serializer.validated_data
