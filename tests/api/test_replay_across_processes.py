"""A nonce used with one server process is refused by another: the cache is shared."""

import pytest
import redis
import requests

from tests.api.builders import make_client, sign
from tests.api.servers import gunicorn, service_environment

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Both servers sit behind one public name, as behind a load balancer.
PUBLIC_HOST = "dss.test"
PATH = "/api/v1/table-structure/acme.things/L0"


@pytest.fixture
def things(tables) -> None:
    tables.create("acme.things", "L0", {"name": "text"}, [("a",)])


def get(base_url: str, signed) -> requests.Response:
    headers = {**signed.headers, "Host": PUBLIC_HOST}
    return requests.get(f"{base_url}{PATH}", headers=headers, timeout=30)


def assert_replay_refused_by_the_other_process(first_url: str, second_url: str) -> None:
    caller = make_client()
    signed = sign(caller, f"http://{PUBLIC_HOST}{PATH}")
    assert get(first_url, signed).status_code == 200
    replayed = get(second_url, signed)
    assert replayed.status_code == 401
    assert replayed.json() == {"error": "HAWK nonce has already been used"}
    assert replayed.headers["WWW-Authenticate"] == "Hawk"
    fresh = sign(caller, f"http://{PUBLIC_HOST}{PATH}")
    assert get(second_url, fresh).status_code == 200


def two_servers(tmp_path, **variables):
    environment = service_environment(tmp_path, ALLOWED_HOSTS=PUBLIC_HOST, **variables)
    return (
        gunicorn(environment, tmp_path / "first.log"),
        gunicorn(environment, tmp_path / "second.log"),
    )


def test_a_replay_to_another_process_is_refused_with_the_database_cache(things, tmp_path):
    first, second = two_servers(tmp_path)
    with first as first_url, second as second_url:
        assert_replay_refused_by_the_other_process(first_url, second_url)


def test_a_replay_to_another_process_is_refused_with_redis(things, tmp_path, redis_url):
    first, second = two_servers(tmp_path, REDIS_URL=redis_url)
    with first as first_url, second as second_url:
        assert_replay_refused_by_the_other_process(first_url, second_url)
    # The nonces went to Redis, to be forgotten after twice the skew.
    store = redis.Redis.from_url(redis_url)
    keys = store.keys("*hawk-nonce:*")
    assert keys
    assert 0 < store.ttl(keys[-1]) <= 121
