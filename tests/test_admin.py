"""Django admin: every page of the service's models renders; the registry actions work."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from api.models import HawkClient
from pipelines.models import DatafileRegistry
from uploads.models import Pipeline, PipelineDataFile

pytestmark = pytest.mark.django_db

SERVICE_MODELS = [DatafileRegistry, Pipeline, PipelineDataFile, HawkClient]


def registry_entry(file_name: str, state: str = DatafileRegistry.State.FAILED, **fields):
    return DatafileRegistry.objects.create(
        source="ons.postcode_directory", file_name=file_name, state=state, **fields
    )


def admin_url(model, page: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}", args=args)


def make_one_of_each():
    pipeline = Pipeline.objects.create(organisation="ons", dataset="postcodes")
    data_file = PipelineDataFile.objects.create(pipeline=pipeline, state="completed")
    client = HawkClient.objects.create(
        id="data-flow", key="k" * 20, scopes=["table_data"], description="data-flow"
    )
    entry = registry_entry("2024-01.csv", error_message="row 3: bad date")
    return [entry, pipeline, data_file, client]


@pytest.mark.parametrize("model", SERVICE_MODELS, ids=lambda model: model.__name__)
def test_changelist_add_and_change_pages_render(admin_client, model):
    objects = {type(obj): obj for obj in make_one_of_each()}

    assert admin_client.get(admin_url(model, "changelist")).status_code == 200
    assert admin_client.get(admin_url(model, "changelist"), {"q": "2024"}).status_code == 200
    assert admin_client.get(admin_url(model, "add")).status_code == 200
    change = admin_client.get(admin_url(model, "change", objects[model].pk))
    assert change.status_code == 200


def test_every_registered_changelist_renders(admin_client):
    make_one_of_each()
    for model in admin.site._registry:
        response = admin_client.get(admin_url(model, "changelist"))
        assert response.status_code == 200, model


def test_registry_changelist_filters_by_state(admin_client):
    registry_entry("failed.csv")
    registry_entry("done.csv", state=DatafileRegistry.State.PROCESSED)

    response = admin_client.get(admin_url(DatafileRegistry, "changelist"), {"state": "failed"})

    assert "failed.csv" in response.text
    assert "done.csv" not in response.text


def run_registry_action(admin_client, action: str, entries) -> None:
    response = admin_client.post(
        admin_url(DatafileRegistry, "changelist"),
        {"action": action, "_selected_action": [entry.pk for entry in entries]},
        follow=True,
    )
    assert response.status_code == 200


def test_mark_ignored_sets_the_selected_entries_to_ignored(admin_client):
    chosen = [registry_entry("a.csv"), registry_entry("b.csv")]
    other = registry_entry("c.csv")

    run_registry_action(admin_client, "mark_ignored", chosen)

    states = dict(DatafileRegistry.objects.values_list("file_name", "state"))
    assert states == {"a.csv": "ignored", "b.csv": "ignored", "c.csv": other.state}


def test_reprocess_removes_the_entries_so_the_next_ingest_takes_the_files(admin_client):
    chosen = registry_entry("a.csv", state=DatafileRegistry.State.PROCESSED)
    registry_entry("b.csv", state=DatafileRegistry.State.PROCESSED)

    run_registry_action(admin_client, "reprocess", [chosen])

    assert list(DatafileRegistry.objects.values_list("file_name", flat=True)) == ["b.csv"]


def test_hawk_client_admin_keeps_the_key_when_left_empty(admin_client):
    client = HawkClient.objects.create(id="c1", key="s" * 20, scopes=["*"], description="d")

    response = admin_client.post(
        admin_url(HawkClient, "change", "c1"),
        {"key": "", "scopes": "table_data", "description": "new description"},
    )

    assert response.status_code == 302
    client.refresh_from_db()
    assert client.key == "s" * 20
    assert client.scopes == ["table_data"]
    assert "s" * 20 not in admin_client.get(admin_url(HawkClient, "change", "c1")).text


def test_hawk_client_admin_refuses_a_new_client_without_key(admin_client):
    response = admin_client.post(
        admin_url(HawkClient, "add"), {"id": "c2", "key": "", "scopes": "*", "description": "d"}
    )

    assert response.status_code == 200
    assert "A new client needs a key." in response.text
    assert not HawkClient.objects.filter(id="c2").exists()


LONG_KEY = "k" * 32


@pytest.fixture
def staff_client(client):
    """A logged-in staff user (not a superuser) who may view and change HAWK clients."""
    user = User.objects.create_user("operator", password="unused", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_hawkclient", "change_hawkclient"])
    )
    client.force_login(user)
    return client


def rotate(admin_client, clients, confirm: bool):
    data = {"action": "rotate_key", "_selected_action": [client.pk for client in clients]}
    if confirm:
        data["confirm"] = "yes"
    return admin_client.post(admin_url(HawkClient, "changelist"), data)


def test_rotate_key_asks_first_and_changes_nothing_until_confirmed(staff_client):
    client = HawkClient.objects.create(id="c1", key=LONG_KEY, scopes=["*"], description="d")

    response = rotate(staff_client, [client], confirm=False)

    assert response.status_code == 200
    assert "Yes, rotate the keys" in response.text
    assert 'name="csrfmiddlewaretoken"' in response.text
    client.refresh_from_db()
    assert client.key == LONG_KEY


def test_rotate_key_gives_new_keys_and_shows_each_once(staff_client):
    chosen = [
        HawkClient.objects.create(id=f"c{n}", key=LONG_KEY, scopes=["*"], description="d")
        for n in (1, 2)
    ]
    other = HawkClient.objects.create(id="c3", key=LONG_KEY, scopes=["*"], description="d")

    response = rotate(staff_client, chosen, confirm=True)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    keys = {client.id: HawkClient.objects.get(id=client.id).key for client in chosen}
    assert len(set(keys.values())) == 2
    for key in keys.values():
        assert key != LONG_KEY and len(key) >= 32
        assert response.text.count(key) == 1
    other.refresh_from_db()
    assert other.key == LONG_KEY
    for page in ["changelist", "change"]:
        args = ["c1"] if page == "change" else []
        shown = staff_client.get(admin_url(HawkClient, page, *args)).text
        assert not any(key in shown for key in keys.values())


def test_rotate_key_needs_the_change_permission(client):
    user = User.objects.create_user("viewer", password="unused", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_hawkclient"))
    client.force_login(user)
    target = HawkClient.objects.create(id="c1", key=LONG_KEY, scopes=["*"], description="d")

    rotate(client, [target], confirm=True)

    target.refresh_from_db()
    assert target.key == LONG_KEY


def test_hawk_client_admin_refuses_a_short_key(admin_client):
    response = admin_client.post(
        admin_url(HawkClient, "add"),
        {"id": "c2", "key": "k" * 31, "scopes": "*", "description": "d"},
    )

    assert response.status_code == 200
    assert "at least 32 characters long, not 31" in response.text
    assert not HawkClient.objects.filter(id="c2").exists()
