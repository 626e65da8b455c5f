"""manage.py add_hawk_client: adds a client, refuses duplicates and empty fields, hides the key."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from api.models import HawkClient

pytestmark = pytest.mark.django_db

SECRET = "a-secret-key-of-32-characters-xx"


def add_client(**overrides) -> str:
    options = {
        "client_id": "data-flow",
        "key": SECRET,
        "scopes": "table_structure, table_data",
        "description": "data-flow's DSSGenericPipeline",
        **overrides,
    }
    out, err = StringIO(), StringIO()
    call_command("add_hawk_client", stdout=out, stderr=err, **options)
    return out.getvalue() + err.getvalue()


def test_adds_the_client_with_its_scopes_and_never_prints_the_key():
    output = add_client()

    client = HawkClient.objects.get(id="data-flow")
    assert client.key == SECRET
    assert client.scopes == ["table_structure", "table_data"]
    assert client.allows("table_data") and not client.allows("ons_postcodes")
    assert "data-flow" in output
    assert SECRET not in output


def test_refuses_a_duplicate_id_and_keeps_the_first_client():
    add_client()

    with pytest.raises(CommandError, match="already exists"):
        add_client(key="another-key-of-enough-length", scopes="*")

    assert HawkClient.objects.get(id="data-flow").key == SECRET


@pytest.mark.parametrize(
    "field, option",
    [
        ("client_id", "--id"),
        ("key", "--key"),
        ("scopes", "--scopes"),
        ("description", "--description"),
    ],
)
def test_refuses_an_empty_field_naming_it(field, option):
    with pytest.raises(CommandError, match=f"{option} must not be empty"):
        add_client(**{field: " , " if field == "scopes" else "  "})

    assert not HawkClient.objects.exists()
