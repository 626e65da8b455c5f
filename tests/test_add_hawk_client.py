"""manage.py add_hawk_client: adds a client, generates or takes a key (never from the command
line), refuses duplicates, empty fields and short keys, and prints only a generated key."""

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from api.keys import MIN_KEY_LENGTH
from api.models import HawkClient

PROJECT_DIR = Path(__file__).resolve().parent.parent
SECRET = "a-secret-key-of-32-characters-xx"
REQUIRED = ["--id", "data-flow", "--scopes", "table_structure, table_data"]


def add_client(*extra: str, stdin: str | None = None, **overrides) -> str:
    options = {"description": "data-flow's DSSGenericPipeline", **overrides}
    if stdin is not None:
        options["stdin"] = StringIO(stdin)
    out, err = StringIO(), StringIO()
    call_command("add_hawk_client", *REQUIRED, *extra, stdout=out, stderr=err, **options)
    return out.getvalue() + err.getvalue()


@pytest.mark.django_db
def test_without_a_key_a_strong_one_is_generated_and_printed_once():
    output = add_client()

    client = HawkClient.objects.get(id="data-flow")
    assert len(client.key) >= MIN_KEY_LENGTH
    assert output.count(client.key) == 1
    assert output.strip().splitlines()[-1] == client.key
    assert client.scopes == ["table_structure", "table_data"]
    assert client.allows("table_data") and not client.allows("ons_postcodes")


@pytest.mark.django_db
def test_generated_keys_differ():
    add_client()
    add_client(client_id="other")

    first, second = HawkClient.objects.values_list("key", flat=True)
    assert first != second


@pytest.mark.django_db
def test_a_key_from_standard_input_is_stored_and_never_printed():
    output = add_client("--key-from-stdin", stdin=f"{SECRET}\n")

    assert HawkClient.objects.get(id="data-flow").key == SECRET
    assert "data-flow" in output
    assert SECRET not in output


@pytest.mark.django_db
def test_a_key_from_the_environment_is_stored_and_never_printed(monkeypatch):
    monkeypatch.setenv("DSS_HAWK_CLIENT_KEY", SECRET)

    output = add_client("--key-from-env")

    assert HawkClient.objects.get(id="data-flow").key == SECRET
    assert SECRET not in output


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key, words",
    [
        ("x" * (MIN_KEY_LENGTH - 1), f"at least {MIN_KEY_LENGTH} characters long, not 31"),
        ("", "the key is empty"),
        (f" {SECRET}", "white space"),
    ],
    ids=["short", "empty", "padded"],
)
def test_a_given_key_that_will_not_do_is_refused_naming_its_origin(monkeypatch, key, words):
    monkeypatch.setenv("DSS_HAWK_CLIENT_KEY", key)

    with pytest.raises(CommandError, match=f"standard input: .*{words}"):
        add_client("--key-from-stdin", stdin=f"{key}\n")
    with pytest.raises(CommandError, match=f"DSS_HAWK_CLIENT_KEY: .*{words}"):
        add_client("--key-from-env")

    assert not HawkClient.objects.exists()


@pytest.mark.django_db
def test_a_key_on_the_command_line_is_refused():
    with pytest.raises(CommandError, match="unrecognized arguments: --key"):
        add_client("--key", SECRET)
    with pytest.raises(CommandError, match="unrecognized arguments: --key="):
        add_client(f"--key={SECRET}")

    assert not HawkClient.objects.exists()


@pytest.mark.django_db
def test_refuses_a_duplicate_id_and_keeps_the_first_client():
    add_client("--key-from-stdin", stdin=SECRET)

    with pytest.raises(CommandError, match="already exists"):
        add_client(scopes="*")

    assert HawkClient.objects.get(id="data-flow").key == SECRET


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field, option",
    [("client_id", "--id"), ("scopes", "--scopes"), ("description", "--description")],
)
def test_refuses_an_empty_field_naming_it(field, option):
    with pytest.raises(CommandError, match=f"{option} must not be empty"):
        add_client(**{field: " , " if field == "scopes" else "  "})

    assert not HawkClient.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_key_piped_into_the_command_is_stored(database_url, service_environment):
    result = subprocess.run(
        [sys.executable, "manage.py", "add_hawk_client", *REQUIRED, "--description", "d"]
        + ["--key-from-stdin"],
        input=f"{SECRET}\n",
        cwd=PROJECT_DIR,
        env={**service_environment, "DATABASE_URL": database_url, "DEBUG": "true"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert HawkClient.objects.get(id="data-flow").key == SECRET
