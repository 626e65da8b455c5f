"""The API's error answers: JSON ``{"error": message}`` with the status of DESIGN.md."""

import logging

from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response
from rest_framework.views import exception_handler

from api.connection_loss import RETRY_AFTER_SECONDS, is_connection_loss

logger = logging.getLogger(__name__)

# Names echoed in error messages are cut to this length (a request may carry 10 kB names).
ECHO_LENGTH = 80


class UnprocessableEntity(APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request cannot be answered for this table"
    default_code = "unprocessable_entity"


class DatasetTableMismatch(APIException):
    """A dataset endpoint's table lacks columns the endpoint serves: the service is at fault."""

    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_code = "dataset_table_mismatch"


class TableReplaced(APIException):
    """A page of a table version that is no longer kept: the client starts its read again."""

    status_code = status.HTTP_410_GONE
    default_code = "table_replaced"


class ConnectionLost(APIException):
    """The database or cache connection was lost during the request (answer 503)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = (
        f"The service lost its database or cache connection; try again in {RETRY_AFTER_SECONDS} "
        "seconds"
    )
    default_code = "connection_lost"


def echo(name: str) -> str:
    """``name`` quoted and shortened for an error message."""
    if len(name) > ECHO_LENGTH:
        name = f"{name[:ECHO_LENGTH]}..."
    return repr(name)


def table_not_found(schema: str, table: str) -> NotFound:
    return NotFound(f"No table {echo(table)} is served in schema {echo(schema)}")


def json_error_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's exception handling with the body ``{"error": message}`` instead of ``detail``;
    a lost database or cache connection answers 503 with ``Retry-After``."""
    lost = is_connection_loss(exc)
    if lost:
        logger.warning("Answering 503: connection lost during the request (%s)", exc)
        exc = ConnectionLost()
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" in response.data:
        response.data = {"error": str(response.data["detail"])}
    if response is not None and lost:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
