"""Start-up checks: each service the configuration names must answer before the service starts.

A broken configuration stops the start with one line naming the environment variable to fix,
not a stack trace. ``manage.py check_services`` runs these checks; the run command, the
container's web and worker commands run it before they start.
"""

import tempfile
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.utils import DatabaseError


def check_services() -> None:
    """Exit with one line naming the setting when a configured service cannot be used."""
    for check in (database_problem, storage_problem, cache_problem):
        problem = check()
        if problem:
            raise SystemExit(problem)


def database_problem() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        where = _database_location()
        return f"DATABASE_URL: cannot connect to {where} ({_first_line(error)})"
    return None


def storage_problem() -> str | None:
    if settings.S3_BUCKET:
        return _bucket_problem()
    return _folder_problem(Path(settings.LOCAL_STORAGE_DIR))


def cache_problem() -> str | None:
    if not settings.REDIS_URL:
        return None
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        return f"REDIS_URL: cannot connect to Redis ({_first_line(error)})"
    return _eviction_problem(client)


def _eviction_problem(client) -> str | None:
    """A Redis that evicts keys when full could forget a HAWK nonce before it expires and
    accept its replay: with a memory limit, the policy must be noeviction."""
    import redis

    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy", "noeviction")
        limit = int(client.config_get("maxmemory").get("maxmemory", 0))
    except redis.ResponseError:
        # Managed Redis services may refuse CONFIG; README.md says which policy to set.
        return None
    if limit and policy != "noeviction":
        return (
            f"REDIS_URL: Redis evicts keys when full (maxmemory-policy {policy}), which could "
            "forget HAWK nonces early; set maxmemory-policy noeviction"
        )
    return None


def _bucket_problem() -> str | None:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from pipelines.storage import get_storage

    storage = get_storage()
    bucket = settings.S3_BUCKET
    try:
        storage.connection.meta.client.head_bucket(Bucket=bucket)
    except NoCredentialsError:
        return (
            f"DSS_S3_ACCESS_KEY_ID: no credentials for bucket {bucket!r} "
            "(set DSS_S3_ACCESS_KEY_ID and DSS_S3_SECRET_ACCESS_KEY, or AWS_* variables)"
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in {"404", "NoSuchBucket"}:
            return f"DSS_S3_BUCKET={bucket}: the bucket does not exist"
        if code in {"403", "AccessDenied"}:
            return f"DSS_S3_BUCKET={bucket}: access denied with the configured credentials"
        return f"DSS_S3_BUCKET={bucket}: {_first_line(error)}"
    except BotoCoreError as error:
        endpoint = settings.S3_ENDPOINT_URL or "the S3 endpoint"
        setting = "DSS_S3_ENDPOINT_URL" if settings.S3_ENDPOINT_URL else "DSS_S3_REGION"
        return f"{setting}: cannot reach {endpoint} ({_first_line(error)})"
    return None


def _folder_problem(folder: Path) -> str | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return (
            f"{settings.LOCAL_STORAGE_SETTING}: cannot write the file storage folder "
            f"{folder} ({error.strerror})"
        )
    return None


def _database_location() -> str:
    params = connection.settings_dict
    host = params.get("HOST") or "localhost"
    port = params.get("PORT") or 5432
    return f"{host}:{port}/{params.get('NAME', '')}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
