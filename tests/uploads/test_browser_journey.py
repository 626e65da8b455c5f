"""The upload journey in headless Chromium, behind single sign-on, against real processes:
an OpenID Connect provider (node's oidc-provider), the service under gunicorn, and a
``db_worker`` that processes the uploads. Every page is screenshotted under tests/artifacts/
and checked with axe-core. What the API then serves is read back with a HAWK client.
"""

import re
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection

from tests.api.builders import make_client, sign
from tests.api.servers import free_port
from tests.uploads import browser
from uploads.models import Pipeline, PipelineDataFile

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# "Day" is written day first: it loads as a date declaring DD/MM/YYYY.
FIRST_VERSION = (
    "Region Name,Amount,Count,Day\n"
    "North,1.5,7,31/01/2024\n"
    "South,2.25,8,29/02/2024\n"
    "East,3,9,01/03/2024\n"
)
# The same columns as loaded, without "Day".
SECOND_VERSION = "region,amount,count\nWest,4.5,10\n"
# "label" is text; asked to load it as an integer, row 2's "x" fails the upload.
NOT_FITTING = "label,value\n1,10\nx,20\n"
PAGE_TIMEOUT_MS = 60_000
HELD_PROGRESS = {"state": "processing_dss", "progress": 40, "info": "Loading", "next": ""}


@pytest.fixture
def journey(tmp_path, database_url, service_environment, storage_folder, monkeypatch):
    """The provider, the service and a worker, and a browser that may reach only them.
    Yields (base URL, Playwright browser, its network handler)."""
    browser.require_browser_tools()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own database
    # reads are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    service_port, provider_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{service_port}"
    with browser.oidc_provider(provider_port, base_url, tmp_path / "provider.log") as issuer:
        environment = {
            **service_environment,
            **browser.oidc_settings(issuer),
            "DJANGO_SETTINGS_MODULE": "dss.test_settings",
            "SECRET_KEY": "browser-test-secret-key",
            "DATABASE_URL": database_url,
            "DSS_STORAGE_DIR": str(storage_folder),
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_COOKIES": "false",
            "LOG_FORMAT": "plain",
            "LOG_LEVEL": "WARNING",
        }
        with (
            browser.service(environment, service_port, tmp_path / "service.log") as url,
            browser.task_worker(environment, tmp_path / "worker.log"),
            sync_playwright() as playwright,
        ):
            chromium = playwright.chromium.launch(
                executable_path=str(browser.CHROMIUM), headless=True, args=["--no-sandbox"]
            )
            try:
                yield url, chromium, browser.Network()
            finally:
                chromium.close()
    browser.wait_until_alone_in_the_database()


def in_database(query, *args, **kwargs):
    """Run a database call from the test, closing its connection after: made while
    Playwright's event loop runs, it has a connection of its own that would otherwise stay
    open and keep the test database from being dropped."""
    try:
        return query(*args, **kwargs)
    finally:
        connection.close()


def log_in(page, base_url: str, email: str) -> None:
    """Through the provider's login and consent pages, back to the service."""
    page.goto(f"{base_url}/upload/")
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/interaction/"))
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", "any password")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/interaction/"))
    page.click("button[type=submit]")  # consent: Continue


def upload(page, base_url: str, slug: str, path: Path) -> None:
    page.goto(f"{base_url}/upload/{slug}/")
    page.set_input_files("input[name=file]", str(path))
    page.click("text=Upload and check")
    page.wait_for_url(re.compile(r"/verify/$"))


def column_row(page, header: str):
    return page.locator("#columns tbody tr", has=page.locator(f"th:text-is('{header}')"))


def name_input(page, header: str):
    return column_row(page, header).locator("input[name^=name_]")


def type_select(page, header: str):
    return column_row(page, header).locator("select[name^=type_]")


def table_data(base_url: str, client, schema: str) -> dict:
    url = f"{base_url}/api/v1/table-data/{schema}/L0?orientation=records"
    response = requests.get(url, headers=sign(client, url).headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_upload_journey_from_login_to_restoring_a_version(journey, tmp_path):
    base_url, chromium, network = journey
    pages = browser.Pages(browser.ARTIFACTS)
    hawk_client = in_database(make_client, scopes=["*"])
    files = tmp_path / "files"
    files.mkdir()
    for name, text in (
        ("regions.csv", FIRST_VERSION),
        ("regions-no-day.csv", SECOND_VERSION),
        ("labels.csv", NOT_FITTING),
    ):
        (files / name).write_text(text)

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.route("**/*", network.handle)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()

    # Log in through the provider: the user is made at first login, without staff status.
    log_in(page, base_url, f"ann@{browser.ALLOWED_DOMAIN}")
    page.wait_for_url(f"{base_url}/upload/")
    user = in_database(get_user_model().objects.get, email=f"ann@{browser.ALLOWED_DOMAIN}")
    assert not user.is_staff and not user.has_usable_password()
    pages.check(page, "choose-pipeline")

    # Create a pipeline; the same one again is refused in an error summary.
    page.fill("#id_organisation", "acme")
    page.fill("#id_dataset", "regions")
    page.click("text=Create pipeline")
    page.wait_for_url(f"{base_url}/upload/acme-regions/")
    pages.check(page, "upload")
    page.goto(f"{base_url}/upload/")
    page.fill("#id_organisation", "ACME")
    page.fill("#id_dataset", "regions")
    page.click("text=Create pipeline")
    assert "A pipeline for acme.regions exists already" in page.inner_text(".govuk-error-summary")
    pages.check(page, "choose-pipeline-duplicate")

    # Upload, then verify with a column name and a type changed.
    upload(page, base_url, "acme-regions", files / "regions.csv")
    assert page.input_value("#id_delimiter") == ","
    assert name_input(page, "Region Name").input_value() == "region_name"
    assert type_select(page, "Count").input_value() == "integer"
    assert column_row(page, "Day").locator("select[name^=date_format_]").input_value() == (
        "%d/%m/%Y"
    )
    pages.check(page, "verify")
    name_input(page, "Region Name").fill("region")
    type_select(page, "Count").select_option("text")
    # Reading the file again another way keeps both changes, and the page says so.
    page.select_option("#id_quote", "'")
    page.get_by_role("button", name="Read the file again").click()
    assert "Your changes to 2 columns were kept" in page.inner_text("#kept-edits")
    assert page.input_value("#id_quote") == "'"
    assert name_input(page, "Region Name").input_value() == "region"
    assert type_select(page, "Count").input_value() == "text"
    pages.check(page, "verify-edits-kept")
    # The worker is quick: while the progress page is checked, its script is told that
    # processing is under way; then it polls the real endpoint and moves on.
    network.held_progress = HELD_PROGRESS
    page.click("text=Yes, load the file")

    # Progress (the live bar), then completed with the first rows and the API URL.
    page.wait_for_url(re.compile(r"/processing/$"))
    assert page.get_attribute("#progress-bar", "max") == "100"
    pages.check(page, "progress")
    network.held_progress = None
    page.wait_for_url(re.compile(r"/completed/$"))
    pages.check(page, "completed")
    api_url = page.inner_text("#api-url")
    assert api_url == f"{base_url}/api/v1/table-data/acme.regions/L0"
    # On any window the URL wraps only after a "/" or a ".", and selects as one string.
    wrapped = {}
    for width in (1200, 768, 320, 375):  # ending at a phone's width, for the screenshot
        page.set_viewport_size({"width": width, "height": 900})
        wrapped[width] = browser.text_lines(page.locator("#api-url"))
        assert "".join(wrapped[width]) == api_url
        assert all(line.endswith(("/", ".")) for line in wrapped[width][:-1]), wrapped
        assert not browser.page_overflows(page), width
    assert len(wrapped[320]) > 1 and len(wrapped[1200]) == 1, wrapped
    selected = page.evaluate(
        """() => {
            getSelection().selectAllChildren(document.getElementById("api-url"));
            const selected = getSelection().toString();
            getSelection().removeAllRanges();
            return selected;
        }"""
    )
    assert selected == api_url
    pages.check(page, "completed-narrow")
    page.set_viewport_size({"width": 1280, "height": 900})
    assert "North" in page.inner_text("#loaded-rows")

    first = table_data(base_url, hawk_client, "acme.regions")["results"]
    assert [row["region"] for row in first] == ["North", "South", "East"]
    assert first[0]["count"] == "7"  # loaded as text, as chosen
    assert first[0]["amount"] == 1.5
    assert first[1]["day"] == "2024-02-29"

    # A second version drops a column: the verify page warns, and it loads.
    upload(page, base_url, "acme-regions", files / "regions-no-day.csv")
    warnings = page.inner_text("main")
    assert "column day is in the current version but not in this file" in warnings
    assert "column count changes type from text to integer" in warnings
    pages.check(page, "verify-dropped-column")
    type_select(page, "count").select_option("text")
    page.click("text=Yes, load the file")
    page.wait_for_url(re.compile(r"/completed/$"))
    second = table_data(base_url, hawk_client, "acme.regions")["results"]
    assert second == [{"id": second[0]["id"], "region": "West", "amount": 4.5, "count": "10"}]

    # The history shows both versions; restoring the first shows it beside the latest,
    # then reprocesses it.
    page.goto(f"{base_url}/upload/acme-regions/versions/")
    assert page.locator("#versions tbody tr").count() == 2
    pages.check(page, "versions")
    page.locator("#versions tbody tr").nth(1).locator("text=Restore").click()
    assert "regions.csv" in page.inner_text("#restored-summary")
    assert "regions-no-day.csv" in page.inner_text("#latest-summary")
    # Restoring adds "day" back and drops nothing: no warning.
    assert page.locator(".govuk-warning-text").count() == 0
    pages.check(page, "restore")
    page.click("text=Restore this version")
    page.wait_for_url(re.compile(r"/completed/$"))
    restored = table_data(base_url, hawk_client, "acme.regions")["results"]
    assert [row["region"] for row in restored] == ["North", "South", "East"]
    assert restored[0]["day"] == "2024-01-31"
    page.goto(f"{base_url}/upload/acme-regions/versions/")
    assert page.locator("#versions tbody tr").count() == 3

    # Without JavaScript: a value that does not fit its type fails the upload; the
    # progress page's link leads to the failed page, and the restored version stays served.
    no_script = chromium.new_context(
        java_script_enabled=False, storage_state=context.storage_state()
    )
    no_script.route("**/*", network.handle)
    plain = no_script.new_page()
    upload(plain, base_url, "acme-regions", files / "labels.csv")
    type_select(plain, "label").select_option("integer")
    plain.click("text=Yes, load the file")
    plain.wait_for_url(re.compile(r"/processing/$"))
    for _ in range(100):
        if plain.url.endswith("/failed/"):
            break
        plain.wait_for_timeout(300)
        plain.click("#check-again")
    assert plain.url.endswith("/failed/")
    assert plain.inner_text("#error-message") == (
        'labels.csv: row 2 (line 3), column label: the value "x" is not a whole number. Fix the '
        "value, or choose the type text for this column, then upload the file again."
    )
    pages.check(plain, "failed-without-javascript", accessible=False)  # axe needs scripts
    page.goto(plain.url)
    pages.check(page, "failed")
    assert [
        row["region"] for row in table_data(base_url, hawk_client, "acme.regions")["results"]
    ] == ["North", "South", "East"]
    no_script.close()

    # The admin goes through the same login and needs staff status.
    response = page.goto(f"{base_url}/admin/")
    assert response.status == 403
    pages.check(page, "admin-needs-staff")
    user.is_staff = user.is_superuser = True
    in_database(user.save)
    page.goto(f"{base_url}/admin/uploads/pipelinedatafile/")
    assert page.locator("#result_list").is_visible()
    assert page.locator("input[type=password]").count() == 0

    # Signing out ends the provider's session too: it asks to confirm, sends the person back
    # to the signed-out page, and an upload page then asks for a login again.
    page.goto(f"{base_url}/upload/")
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/session/end"))
    page.click("button[name=logout]")  # "Yes, sign me out"
    page.wait_for_url(f"{base_url}/signed-out/")
    assert "and of single sign-on" in page.inner_text("main")
    pages.check(page, "signed-out")
    page.goto(f"{base_url}/upload/")
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/interaction/"))
    assert page.locator("input[name=login]").is_visible()

    # Only the provider's own pages ask for something elsewhere (a web font).
    blocked = network.blocked
    assert blocked and not [page for _, page in blocked if page.startswith(base_url)], blocked
    context.close()


# A second version of a pipeline whose current version has these columns: the verify page
# shows "Current version" with them, and "Placed On" (day first) a date format too.
CURRENT_COLUMNS = [
    ["order_ref", "text"],
    ["placed_on", "date"],
    ["quantity", "integer"],
    ["unit_price", "numeric"],
]
WIDE_VERSION = (
    "Order Ref,Placed On,Quantity,Unit Price,Customer Reference Number,Delivery Postcode\n"
    "A-100,31/01/2024,3,12.50,CUST-000123,SW1A 2AA\n"
)
# Phone, tablet and desktop widths (CSS pixels).
WIDTHS = (375, 768, 1200)


def name_inputs_cut_off(page) -> list[dict]:
    """The verify page's "Loads as" inputs whose value does not fit in them."""
    return page.evaluate(
        """() => [...document.querySelectorAll("#columns input[name^=name_]")]
            .filter(input => input.scrollWidth > input.clientWidth)
            .map(input => ({value: input.value, width: input.getBoundingClientRect().width}))"""
    )


def test_the_verify_page_shows_whole_column_names_and_the_current_version_at_any_width(
    journey, tmp_path
):
    base_url, chromium, network = journey
    pages = browser.Pages(browser.ARTIFACTS / "verify-layout")
    pipeline = in_database(Pipeline.objects.create, organisation="acme", dataset="orders")
    in_database(
        PipelineDataFile.objects.create,
        pipeline=pipeline,
        original_name="orders-1.csv",
        state=PipelineDataFile.State.COMPLETED,
        column_types=CURRENT_COLUMNS,
    )
    (tmp_path / "orders-2.csv").write_text(WIDE_VERSION)
    context = chromium.new_context(viewport={"width": WIDTHS[-1], "height": 900})
    context.route("**/*", network.handle)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    log_in(page, base_url, f"ann@{browser.ALLOWED_DOMAIN}")
    page.wait_for_url(f"{base_url}/upload/")

    upload(page, base_url, pipeline.slug, tmp_path / "orders-2.csv")

    assert name_input(page, "Customer Reference Number").input_value() == (
        "customer_reference_number"
    )
    laid_out = {}
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        pages.check(page, f"verify-{width}")
        laid_out[width] = {
            "current version shown": page.locator("#current-columns").is_visible(),
            "names cut off": name_inputs_cut_off(page),
            # A narrow window scrolls the columns table, not the page.
            "page wider than the window": browser.page_overflows(page),
        }
    fine = {"current version shown": True, "names cut off": [], "page wider than the window": False}
    assert laid_out == dict.fromkeys(WIDTHS, fine)
    context.close()


def test_a_person_outside_the_allowed_domains_is_refused(journey):
    base_url, chromium, network = journey
    context = chromium.new_context()
    context.route("**/*", network.handle)
    page = context.new_page()

    log_in(page, base_url, "someone@elsewhere.example.com")

    page.wait_for_url(f"{base_url}/login/refused/")
    assert "You cannot use this service" in page.inner_text("h1")
    assert not in_database(
        get_user_model().objects.filter(email__endswith="elsewhere.example.com").exists
    )
    assert page.goto(f"{base_url}/upload/").url.startswith("http://127.0.0.1")
    context.close()
