"""The upload pages in the Django test client: login, forms, refusals shown in GOV.UK error
summaries, CSRF, and the state each page belongs to. The whole journey in a browser is in
test_browser_journey.py."""

import uuid
from datetime import date, datetime
from decimal import Decimal

import lxml.html
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.api.builders import TableBuilder
from tests.uploads.builders import CASES, upload, workbook_bytes
from uploads.models import Pipeline, PipelineDataFile

State = PipelineDataFile.State


@pytest.fixture
def pipeline(db) -> Pipeline:
    return Pipeline.objects.create(organisation="acme", dataset="things")


def upload_file(client, pipeline: Pipeline, name: str, content: bytes):
    return client.post(
        reverse("uploads:upload", args=[pipeline.slug]),
        {"file": SimpleUploadedFile(name, content, content_type="text/csv")},
    )


def uploaded(client, pipeline: Pipeline, name: str, content: bytes) -> PipelineDataFile:
    response = upload_file(client, pipeline, name, content)
    assert response.status_code == 302, response.content.decode()[:2000]
    return PipelineDataFile.objects.get(pipeline=pipeline, original_name=name)


def verify_url(data_file: PipelineDataFile) -> str:
    return reverse("uploads:verify", args=[data_file.pipeline.slug, data_file.pk])


def load_form(response) -> dict[str, str]:
    """The verify page's fields as the page fills them in."""
    form = response.context["form"]
    dialect = response.context["dialect"]
    data = {name: form[name].value() for name in form.fields}
    data |= {name: dialect[name].value() for name in dialect.fields}
    return data | {"detected": response.context["detected"]}


@pytest.fixture
def checked_client(db, django_user_model) -> Client:
    """A logged-in person's client that checks CSRF tokens as a browser's requests are."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user("analyst", password="unused"))
    return client


def page_form(response) -> dict[str, str]:
    """What the verify page's form posts as the page fills it in, as a browser posts it:
    its CSRF token and hidden fields included, no button."""
    document = lxml.html.fromstring(response.content)
    [form] = [form for form in document.forms if form.xpath(".//button[@name='action']")]
    return dict.fromkeys(form.inputs.keys(), "") | dict(form.form_values())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, args",
    [
        ("uploads:pipelines", []),
        ("uploads:upload", ["acme-things"]),
        ("uploads:history", ["acme-things"]),
        ("uploads:verify", ["acme-things", uuid.uuid4()]),
        ("uploads:processing", ["acme-things", uuid.uuid4()]),
        ("uploads:completed", ["acme-things", uuid.uuid4()]),
        ("uploads:failed", ["acme-things", uuid.uuid4()]),
        ("uploads:restore", ["acme-things", uuid.uuid4()]),
        ("uploads:progress", [uuid.uuid4()]),
    ],
)
def test_every_upload_page_sends_visitors_to_log_in(client, name, args):
    response = client.get(reverse(name, args=args))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.django_db
def test_local_login_form_logs_in_with_username_and_password(client, django_user_model):
    django_user_model.objects.create_user("analyst", "analyst@example.com", "a long password")
    page = client.get(reverse("login"))
    assert 'class="govuk-input"' in page.text

    response = client.post(
        reverse("login"),
        {"username": "analyst", "password": "a long password", "next": "/upload/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/upload/"
    assert client.get("/upload/").status_code == 200


@pytest.mark.django_db
def test_local_login_form_shows_a_wrong_password_in_an_error_summary(client, django_user_model):
    django_user_model.objects.create_user("analyst", "analyst@example.com", "a long password")

    response = client.post(reverse("login"), {"username": "analyst", "password": "wrong"})

    assert response.status_code == 200
    assert "govuk-error-summary" in response.text
    assert "enter a correct username and password" in response.text


@pytest.mark.django_db
def test_a_pipeline_is_created_with_normalised_names(admin_client):
    response = admin_client.post(
        reverse("uploads:pipelines"), {"organisation": "ACME", "dataset": "Sales.2024"}
    )

    pipeline = Pipeline.objects.get()
    assert (pipeline.organisation, pipeline.dataset) == ("acme", "sales_2024")
    assert response["Location"] == reverse("uploads:upload", args=[pipeline.slug])


@pytest.mark.django_db
def test_a_duplicate_pipeline_is_refused_naming_it(admin_client, pipeline):
    response = admin_client.post(
        reverse("uploads:pipelines"), {"organisation": "Acme", "dataset": "things"}
    )

    assert response.status_code == 400
    assert "govuk-error-summary" in response.text
    assert "A pipeline for acme.things exists already" in response.text
    assert Pipeline.objects.count() == 1


@pytest.mark.django_db
def test_a_pipeline_name_with_other_characters_is_refused(admin_client):
    response = admin_client.post(
        reverse("uploads:pipelines"), {"organisation": "acme corp", "dataset": "things"}
    )

    assert response.status_code == 400
    assert 'href="#id_organisation"' in response.text
    assert not Pipeline.objects.exists()


@pytest.mark.django_db
def test_every_form_posts_a_csrf_token_and_a_post_without_one_is_refused(django_user_model):
    user = django_user_model.objects.create_user("analyst", password="a long password")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    page = client.get(reverse("uploads:pipelines"))
    forms = page.text.count("<form")
    assert forms == page.text.count('name="csrfmiddlewaretoken"') >= 2

    response = client.post(reverse("uploads:pipelines"), {"organisation": "a", "dataset": "b"})
    assert response.status_code == 403
    assert not Pipeline.objects.exists()


@pytest.mark.django_db
def test_upload_without_a_file_shows_the_error_summary(admin_client, pipeline):
    response = admin_client.post(reverse("uploads:upload", args=[pipeline.slug]), {})

    assert response.status_code == 400
    assert "Choose a file to upload" in response.text
    assert 'href="#id_file"' in response.text


@pytest.mark.django_db
def test_a_file_over_the_size_limit_is_refused_on_the_upload_page(admin_client, pipeline, settings):
    settings.UPLOAD_MAX_BYTES = 10

    response = upload_file(admin_client, pipeline, "big.csv", b"a,b\n1,2\n3,4\n5,6\n")

    assert response.status_code == 400
    assert "govuk-error-summary" in response.text
    assert "larger than 10 bytes" in response.text
    assert PipelineDataFile.objects.get().state == State.FAILED


@pytest.mark.django_db
def test_verify_shows_the_detected_dialect_names_and_types(admin_client, pipeline):
    data_file = uploaded(
        admin_client, pipeline, "sales.csv", b"Region Name;Amount\nNorth;1,5\nSouth;2,25\n"
    )

    response = admin_client.get(verify_url(data_file))

    assert response.status_code == 200
    dialect = response.context["dialect"]
    assert dialect["delimiter"].value() == ";"
    assert dialect["decimal_separator"].value() == ","
    form = response.context["form"]
    assert [form["name_0"].value(), form["name_1"].value()] == ["region_name", "amount"]
    assert [form["type_0"].value(), form["type_1"].value()] == ["text", "numeric"]
    assert "North" in response.text


@pytest.mark.django_db
def test_reading_again_with_another_delimiter_changes_the_columns(admin_client, pipeline):
    data_file = uploaded(admin_client, pipeline, "a.csv", b"a;b,c\n1;2,3\n")
    first = admin_client.get(verify_url(data_file))
    data = load_form(first) | {"action": "reread"}

    data["delimiter"] = ";" if data["delimiter"] == "," else ","
    response = admin_client.post(verify_url(data_file), data)

    assert response.status_code == 200
    assert response.context["dialect"]["delimiter"].value() == data["delimiter"]
    headers = [column.header for column in response.context["inspection"].columns]
    assert headers == (["a", "b,c"] if data["delimiter"] == ";" else ["a;b", "c"])


@pytest.mark.django_db
def test_an_invalid_column_name_is_shown_in_the_error_summary(admin_client, pipeline):
    data_file = uploaded(admin_client, pipeline, "a.csv", b"a,b\n1,2\n")
    data = load_form(admin_client.get(verify_url(data_file))) | {"action": "load"}
    data["name_1"] = "1st"

    response = admin_client.post(verify_url(data_file), data)

    assert response.status_code == 400
    assert 'href="#id_name_1"' in response.text
    assert "&#x27;1st&#x27; is not a column name" in response.text
    data_file.refresh_from_db()
    assert data_file.state == State.UPLOADED


@pytest.mark.django_db
def test_a_row_with_another_number_of_values_is_refused_with_row_and_counts(admin_client, pipeline):
    data_file = uploaded(admin_client, pipeline, "a.csv", b"a,b\n1,2\n3,4,5\n")

    response = admin_client.get(verify_url(data_file))

    assert response.status_code == 400
    assert "govuk-error-summary" in response.text
    assert "row 2 (line 3) has 3 values where the header has 2 columns" in response.text
    assert "Yes, load the file" not in response.text


@pytest.mark.django_db(transaction=True)
def test_yes_stores_the_chosen_names_and_types_and_queues_processing(admin_client, pipeline):
    data_file = uploaded(admin_client, pipeline, "a.csv", b"a,b\n1,2\n")
    data = load_form(admin_client.get(verify_url(data_file))) | {"action": "load"}
    data |= {"name_0": "first", "type_1": "text"}

    response = admin_client.post(verify_url(data_file), data)

    data_file.refresh_from_db()
    assert data_file.state == State.VERIFIED
    assert data_file.column_types == [["first", "integer"], ["b", "text"]]
    assert response["Location"] == reverse("uploads:processing", args=[pipeline.slug, data_file.pk])
    progress = admin_client.get(reverse("uploads:progress", args=[data_file.pk])).json()
    assert progress["state"] == "verified"
    assert progress["progress"] == 30
    assert progress["next"] == response["Location"]


@pytest.mark.django_db
def test_no_deletes_the_file_and_its_record(admin_client, pipeline, storage_folder):
    data_file = uploaded(admin_client, pipeline, "a.csv", b"a,b\n1,2\n")
    assert any(storage_folder.rglob("*"))

    response = admin_client.post(verify_url(data_file), {"action": "delete"})

    assert response["Location"] == reverse("uploads:upload", args=[pipeline.slug])
    assert not PipelineDataFile.objects.exists()
    assert not [path for path in storage_folder.rglob("*") if path.is_file()]


@pytest.mark.django_db
def test_a_failed_upload_shows_its_reason_and_what_to_do(admin_client, pipeline):
    data_file = PipelineDataFile.objects.create(
        pipeline=pipeline,
        original_name="a.csv",
        state=State.FAILED,
        error_message="row 7, column amount: 'abc' is not a number",
    )

    response = admin_client.get(reverse("uploads:failed", args=[pipeline.slug, data_file.pk]))

    assert "row 7, column amount: &#x27;abc&#x27; is not a number" in response.text
    assert "upload the file again" in response.text
    # The verify page of a failed file is its failed page.
    assert admin_client.get(verify_url(data_file))["Location"] == reverse(
        "uploads:failed", args=[pipeline.slug, data_file.pk]
    )


def test_the_completed_page_shows_the_first_rows_of_the_served_table(admin_client, pipeline):
    builder = TableBuilder()
    builder.create(pipeline.schema_name, "L0", {"region": "text"}, [("north",), ("south",)])
    data_file = PipelineDataFile.objects.create(
        pipeline=pipeline, original_name="a.csv", state=State.COMPLETED
    )

    response = admin_client.get(reverse("uploads:completed", args=[pipeline.slug, data_file.pk]))

    assert response.status_code == 200
    assert "north" in response.text and "south" in response.text
    api_url = lxml.html.fromstring(response.content).get_element_by_id("api-url")
    assert (
        api_url.text_content() == f"http://testserver/api/v1/table-data/{pipeline.schema_name}/L0"
    )
    # It may wrap after a "/" or a ".", never inside "table-data".
    assert [piece.text for piece in api_url.xpath(".//span")] == [
        "http://",
        "testserver/",
        "api/",
        "v1/",
        "table-data/",
        "acme.",
        "things/",
        "L0",
    ]
    assert len(api_url.xpath(".//wbr")) == 7


def test_the_completed_page_shows_values_as_stored_and_served(admin_client, pipeline):
    columns = {
        "amount": "numeric",
        "count": "integer",
        "placed_on": "date",
        "seen_at": "timestamp",
        "paid": "boolean",
        "note": "text",
    }
    rows = [
        (Decimal("12.50"), 3, date(2024, 1, 31), datetime(2024, 1, 31, 9, 5), True, "a, b"),
        (Decimal("0.000"), -7, None, None, False, None),
    ]
    TableBuilder().create(pipeline.schema_name, "L0", columns, rows)
    data_file = PipelineDataFile.objects.create(
        pipeline=pipeline, original_name="a.csv", state=State.COMPLETED
    )

    response = admin_client.get(reverse("uploads:completed", args=[pipeline.slug, data_file.pk]))

    table = lxml.html.fromstring(response.content).get_element_by_id("loaded-rows")
    assert [cell.text_content() for cell in table.xpath(".//th")] == list(columns)
    assert [
        [cell.text_content() for cell in row.xpath("td")] for row in table.xpath(".//tbody/tr")
    ] == [
        ["12.50", "3", "2024-01-31", "2024-01-31T09:05:00", "true", "a, b"],
        ["0.000", "-7", "", "", "false", ""],
    ]


@pytest.mark.django_db
def test_only_a_completed_file_can_be_restored(admin_client, pipeline):
    data_file = PipelineDataFile.objects.create(pipeline=pipeline, state=State.FAILED)

    response = admin_client.post(reverse("uploads:restore", args=[pipeline.slug, data_file.pk]))

    assert response.status_code == 404
    assert PipelineDataFile.objects.count() == 1


@pytest.mark.django_db
def test_govuk_assets_named_by_the_stylesheet_are_redirected_to_static_files(client):
    response = client.get("/assets/fonts/bold-b542beb274-v2.woff2")

    assert response.status_code == 301
    assert response["Location"] == "/static/govuk/assets/fonts/bold-b542beb274-v2.woff2"


@pytest.mark.django_db
def test_a_workbook_s_sheet_is_chosen_on_the_verify_page(admin_client, pipeline):
    content = workbook_bytes({"Notes": [["note"], ["first"]], "Data": [["x", "y"], [1, 2]]})
    data_file = uploaded(admin_client, pipeline, "book.xlsx", content)
    first = admin_client.get(verify_url(data_file))
    assert first.context["dialect"]["sheet"].value() == "Notes"
    assert [c.header for c in first.context["inspection"].columns] == ["note"]

    data = load_form(first) | {"action": "reread", "sheet": "Data"}
    response = admin_client.post(verify_url(data_file), data)

    assert response.context["dialect"]["sheet"].value() == "Data"
    assert [c.header for c in response.context["inspection"].columns] == ["x", "y"]
    assert 'id="id_sheet"' in response.text


@pytest.mark.django_db
def test_every_page_offers_sign_out_which_logs_out(admin_client):
    page = admin_client.get(reverse("uploads:pipelines"))
    assert f'action="{reverse("logout")}"' in page.text

    admin_client.post(reverse("logout"))

    assert admin_client.get(reverse("uploads:pipelines")).status_code == 302


def test_a_day_first_column_shows_its_date_format_and_a_hint_when_month_first_fits_too(
    checked_client, pipeline
):
    data = (CASES / "dates-day-first" / "input-ambiguous.csv").read_bytes()
    data_file = upload(data, "orders.csv", pipeline)

    response = checked_client.get(verify_url(data_file))

    assert response.status_code == 200
    assert page_form(response)["date_format_1"] == "%d/%m/%Y"
    hint = "Every value read fits DD/MM/YYYY or MM/DD/YYYY: check which is right"
    assert f'<div id="id_date_format_1-hint" class="govuk-hint govuk-body-s">{hint}' in (
        response.text
    )
    assert 'aria-describedby="id_date_format_1-hint"' in response.text
    # Columns that are not dates carry their (empty) format hidden.
    assert '<input type="hidden" name="date_format_0"' in response.text


def test_a_changed_date_format_is_stored_with_the_column_types(checked_client, pipeline):
    data = (CASES / "dates-day-first" / "input-ambiguous.csv").read_bytes()
    data_file = upload(data, "orders.csv", pipeline)
    data = page_form(checked_client.get(verify_url(data_file)))

    data |= {"action": "load", "date_format_1": "%m/%d/%Y"}
    response = checked_client.post(verify_url(data_file), data)

    assert response.status_code == 302, response.text[-3000:]
    data_file.refresh_from_db()
    assert data_file.state == State.VERIFIED
    assert data_file.column_types[1] == ["placed_on", "date"]
    assert data_file.date_formats == {"placed_on": "%m/%d/%Y"}


@pytest.mark.parametrize(
    ("date_format", "message"),
    [
        (
            "%m/%d/%Y",
            "Column 2 (placed_on): row 3&#x27;s value &#x27;31/12/2020&#x27; does not fit "
            "the date format MM/DD/YYYY",
        ),
        (
            "%d %B %Y",
            "Date format of placed_on: %d %B %Y is not a date format an upload takes",
        ),
    ],
)
def test_a_date_format_that_cannot_be_used_is_shown_in_the_error_summary(
    checked_client, pipeline, date_format, message
):
    data_file = upload((CASES / "dates-day-first" / "input.csv").read_bytes(), "o.csv", pipeline)
    data = page_form(checked_client.get(verify_url(data_file)))

    data |= {"action": "load", "date_format_1": date_format}
    response = checked_client.post(verify_url(data_file), data)

    assert response.status_code == 400
    summary = response.text.split('govuk-error-summary__list">')[1].split("</ul>")[0]
    assert 'href="#id_date_format_1"' in summary
    assert message in summary
    assert '<p id="id_date_format_1-error" class="govuk-error-message">' in response.text
    data_file.refresh_from_db()
    assert data_file.state == State.UPLOADED


def test_a_reread_with_another_delimiter_keeps_a_renamed_column_and_a_changed_type(
    checked_client, pipeline
):
    data_file = upload(b"Region;Amount;Count\nNorth;1,5;7\nSouth;2;8\n", "r.csv", pipeline)
    first = page_form(checked_client.get(verify_url(data_file)))
    assert (first["delimiter"], first["type_1"], first["type_2"]) == (";", "numeric", "integer")
    edited = first | {"name_0": "area", "type_2": "text"}

    # Read with commas, the file cannot load (its decimal commas split rows): the page says
    # so, and the edits travel on, hidden.
    wrong = checked_client.post(
        verify_url(data_file), edited | {"delimiter": ",", "action": "reread"}
    )
    assert wrong.status_code == 400
    assert "row 1 (line 2) has 2 values where the header has 1 column" in wrong.text
    # Back to semicolons with a decimal point: "Amount" is text now, as detected.
    again = page_form(wrong) | {"delimiter": ";", "decimal_separator": ".", "action": "reread"}
    response = checked_client.post(verify_url(data_file), again)

    assert response.status_code == 200
    shown = page_form(response)
    assert [shown[f"name_{i}"] for i in range(3)] == ["area", "amount", "count"]
    assert [shown[f"type_{i}"] for i in range(3)] == ["text", "text", "text"]
    assert response.context["carried"].kept == 2
    assert '<div class="govuk-inset-text" id="kept-edits">' in response.text
    assert "Your changes to 2 columns were kept after reading the file again." in response.text
    # The edits are then loaded as they are shown.
    response = checked_client.post(verify_url(data_file), shown | {"action": "load"})
    assert response.status_code == 302
    data_file.refresh_from_db()
    assert data_file.column_types == [["area", "text"], ["amount", "text"], ["count", "text"]]


def test_a_reread_keeps_the_edits_of_columns_whose_header_is_still_there(checked_client, pipeline):
    data_file = upload(b"Region,Day,Note\nNorth,31/12/2024,x\n", "r.csv", pipeline)
    first = page_form(checked_client.get(verify_url(data_file)))
    edited = first | {"name_1": "placed_on", "date_format_1": "%d/%m/%Y", "name_2": "remark"}

    response = checked_client.post(
        verify_url(data_file), edited | {"quote": "'", "action": "reread"}
    )

    shown = page_form(response)
    assert [shown[f"name_{i}"] for i in range(3)] == ["region", "placed_on", "remark"]
    assert shown["date_format_1"] == "%d/%m/%Y"
    assert response.context["carried"].kept == 2
    # Without the token the page's form carries, the post is refused.
    assert checked_client.post(verify_url(data_file), {"action": "reread"}).status_code == 403


@pytest.mark.parametrize(
    "then",
    [
        # Read again another way: the edited type is carried to the new read.
        {"quote": "'", "action": "reread"},
        # "Yes" refused for another column's name: the page shows what was posted.
        {"name_2": "1st", "action": "load"},
    ],
    ids=["reread", "refused-yes"],
)
def test_the_warnings_follow_the_types_the_page_shows(checked_client, pipeline, then):
    PipelineDataFile.objects.create(
        pipeline=pipeline,
        original_name="v1.csv",
        state=State.COMPLETED,
        column_types=[["order_ref", "text"], ["placed_on", "date"]],
    )
    data_file = upload(b"order_ref,placed_on,note\nA-1,soon,x\n", "v2.csv", pipeline)
    first = checked_client.get(verify_url(data_file))
    changed = "column placed_on changes type from date to text"
    assert [change.message for change in first.context["warnings"]] == [changed]
    assert changed in first.text

    data = page_form(first) | {"type_1": "date"} | then
    response = checked_client.post(verify_url(data_file), data)

    assert page_form(response)["type_1"] == "date"
    assert response.context["warnings"] == []
    assert "changes type" not in response.text
    assert "govuk-warning-text" not in response.text


def test_each_name_input_is_as_wide_as_the_name_it_shows(checked_client, pipeline):
    data_file = upload(b"Customer Reference Number,id\nC-1,1\n", "c.csv", pipeline)
    first = checked_client.get(verify_url(data_file))
    long_name = "customer_reference_number_given_by_the_sales_system"
    data = page_form(first) | {"name_0": long_name, "name_1": "1st", "action": "load"}

    refused = checked_client.post(verify_url(data_file), data)

    def sizes(response) -> list[str]:
        document = lxml.html.fromstring(response.content)
        return [
            field.get("size") for field in document.xpath("//input[starts-with(@name, 'name_')]")
        ]

    # Two characters more than the name, at least ten.
    assert sizes(first) == ["27", "10"]
    assert refused.status_code == 400
    assert sizes(refused) == [str(len(long_name) + 2), "10"]


def test_yes_on_a_file_of_many_columns_stores_them_all(checked_client, pipeline):
    width = 600  # three fields a column: well past Django's default limit of 1,000 fields
    header = ",".join(f"c{number}" for number in range(width))
    row = ",".join(str(number) for number in range(width))
    data_file = upload(f"{header}\n{row}\n".encode(), "wide.csv", pipeline)
    data = page_form(checked_client.get(verify_url(data_file))) | {"action": "load"}

    response = checked_client.post(verify_url(data_file), data)

    assert response.status_code == 302, response.content.decode()[:500]
    data_file.refresh_from_db()
    assert len(data_file.column_types) == width


def test_yes_after_changing_how_the_file_is_read_reads_it_again_and_loads_nothing(
    checked_client, pipeline
):
    data_file = upload(b"name,d\na,01/02/2024\n", "a.csv", pipeline)
    data = page_form(checked_client.get(verify_url(data_file))) | {"action": "load"}

    response = checked_client.post(verify_url(data_file), data | {"delimiter": ";"})

    assert response.status_code == 200
    assert "was read again and not loaded" in response.text
    data_file.refresh_from_db()
    assert data_file.state == State.UPLOADED
    again = page_form(response) | {"action": "load"}
    assert again["delimiter"] == ";" and "name_1" not in again
    assert checked_client.post(verify_url(data_file), again).status_code == 302
    data_file.refresh_from_db()
    assert data_file.column_types == [["name_d", "text"]]
