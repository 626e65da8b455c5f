"""The health check, the index page and the favicon."""

import socket

import lxml.html
import pytest
from django.db import connection
from django.urls import reverse


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db
def test_healthcheck_answers_ok_when_database_and_local_storage_answer(client):
    response = client.get(reverse("healthcheck"))

    assert response.status_code == 200
    assert response.json() == {"status": "OK"}


@pytest.mark.django_db
def test_healthcheck_answers_ok_with_s3_storage(client, s3_storage):
    assert client.get(reverse("healthcheck")).json() == {"status": "OK"}


@pytest.mark.django_db
def test_healthcheck_names_storage_when_the_bucket_does_not_exist(client, settings, s3_storage):
    settings.S3_BUCKET = "no-such-bucket"

    response = client.get(reverse("healthcheck"))

    assert response.status_code == 503
    assert response.json() == {"status": "FAIL", "failing": ["storage"]}


@pytest.mark.django_db
def test_healthcheck_names_storage_when_the_folder_cannot_be_written(client, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.LOCAL_STORAGE_DIR = blocker / "storage"

    response = client.get(reverse("healthcheck"))

    assert response.status_code == 503
    assert response.json()["failing"] == ["storage"]


@pytest.mark.django_db(transaction=True)
def test_healthcheck_names_the_database_when_it_does_not_answer(client):
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=closed_port())
    try:
        response = client.get(reverse("healthcheck"))
    finally:
        connection.close()
        connection.settings_dict.update(saved)

    assert response.status_code == 503
    assert response.json() == {"status": "FAIL", "failing": ["database"]}


@pytest.mark.django_db
def test_index_sends_visitors_to_log_in(client):
    response = client.get(reverse("index"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_index_shows_the_service_to_a_logged_in_user(admin_client):
    response = admin_client.get(reverse("index"))

    assert response.status_code == 200
    assert "Data Store Service" in response.text


@pytest.mark.django_db
def test_index_links_the_api_documentation_once_in_the_footer(admin_client):
    document = lxml.html.fromstring(admin_client.get(reverse("index")).content)

    links = document.xpath("//a[normalize-space()='API documentation']")

    assert [link.get("href") for link in links] == [reverse("api-docs")]
    assert links[0].xpath("ancestor::footer")


@pytest.mark.django_db
def test_favicon_is_redirected_to_govuk_frontend_s_without_a_login(client):
    response = client.get("/favicon.ico", follow=True)

    assert response.redirect_chain == [("/static/govuk/assets/images/favicon.ico", 302)]
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\x00\x00\x01\x00")


@pytest.mark.django_db
def test_pages_name_govuk_frontend_s_icons(client):
    document = lxml.html.fromstring(client.get(reverse("login")).content)

    icons = document.xpath("//link[@rel='icon']/@href")

    assert "/static/govuk/assets/images/favicon.ico" in icons
    assert all(client.get(icon).status_code == 200 for icon in icons)
