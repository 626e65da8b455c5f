from django.urls import reverse


def test_healthcheck_answers_ok_when_database_and_storage_answer(client, db):
    response = client.get(reverse("healthcheck"))
    assert response.status_code == 200
    assert response.json() == {"status": "OK"}
