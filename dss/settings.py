"""Settings of the Data Store Service.

Every setting comes from an environment variable (a ``.env`` file in the project folder, or
the file DSS_ENV_FILE names, is read first when present; real variables win). ``.env.example``
lists them all with their defaults; README.md explains them.
"""

import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from dotenv import load_dotenv

from dss.environment import env_bool, env_file, env_int, env_list, env_str
from dss.run_children import follow_the_run_command

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(env_file(BASE_DIR))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise SystemExit(
            "SECRET_KEY must be set when DEBUG is off "
            "(for local development, python3 dev.py run writes a .env that sets both)"
        )
    SECRET_KEY = "insecure-development-key"

STATE_DIR = Path(env_str("DSS_STATE_DIR", str(BASE_DIR / ".state"))).resolve()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Behind a TLS-terminating proxy, build absolute URLs (and check HAWK MACs) against the
# scheme, host and port that the client used; dss.forwarded reads the headers (the first of
# several values) and folds X-Forwarded-Port into the host.
TRUST_FORWARDED_HEADERS = env_bool("DSS_TRUST_FORWARDED_HEADERS", False)
if TRUST_FORWARDED_HEADERS:
    USE_X_FORWARDED_HOST = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "pipelines",
    "uploads",
    "api",
]

MIDDLEWARE = [
    # First, so that it signs API answers exactly as they leave the service.
    "api.middleware.HawkResponseSigning",
    # Before anything builds a URL or checks the host: the public scheme, host and port.
    "dss.forwarded.ForwardedHeaders",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dss.urls"
WSGI_APPLICATION = "dss.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: PostgreSQL only. Without DATABASE_URL, an embedded server is started (or joined);
# the run command starts it once and hands its URL to the processes it runs.
DATABASE_URL = env_str("DATABASE_URL")
EMBEDDED_DATABASE = not DATABASE_URL
if EMBEDDED_DATABASE:
    from dss.embedded import embedded_database_url
    from dss.run_children import HANDED_DOWN_DATABASE_URL

    DATABASE_URL = env_str(HANDED_DOWN_DATABASE_URL) or embedded_database_url(STATE_DIR)
try:
    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
except ValueError:
    raise SystemExit(
        "DATABASE_URL is not a PostgreSQL URL (postgres://user:password@host:port/name)"
    ) from None
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise SystemExit("DATABASE_URL must point at PostgreSQL (postgres://...)")
# The embedded server's URL names its socket folder as a query parameter; keep it in HOST,
# where Django and code that connects with psycopg from these settings look for it.
if not DATABASES["default"]["HOST"] and "host" in DATABASES["default"].get("OPTIONS", {}):
    DATABASES["default"]["HOST"] = DATABASES["default"]["OPTIONS"].pop("host")
# A server that does not answer fails the start within seconds instead of hanging.
DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 10)

# A process run by the run command ends when the run command ends, even when it is killed.
follow_the_run_command(STATE_DIR if EMBEDDED_DATABASE else None)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Caches (api/cache.py). HAWK nonces live in an alias of their own that nothing else uses or
# clears, shared by every process and never evicted before they expire: Redis when REDIS_URL
# is set (with maxmemory-policy noeviction, see README.md), else a database table of its own.
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "api.cache.PrefixedRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "dss",
        },
        "hawk_nonces": {
            "BACKEND": "api.cache.PrefixedRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "dss-hawk-nonces",
        },
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "dss_cache",
        },
        "hawk_nonces": {
            # Django's database cache, but one that never culls a nonce before it expires.
            "BACKEND": "api.cache.NoEvictionDatabaseCache",
            "LOCATION": "dss_hawk_nonces",
        },
    }

# File storage (pipelines/storage.py): a local folder by default, S3 when a bucket is named.
S3_BUCKET = env_str("DSS_S3_BUCKET")
S3_ENDPOINT_URL = env_str("DSS_S3_ENDPOINT_URL")
LOCAL_STORAGE_DIR = Path(env_str("DSS_STORAGE_DIR", str(STATE_DIR / "files"))).resolve()
# The variable to name when the local folder cannot be used.
LOCAL_STORAGE_SETTING = "DSS_STORAGE_DIR" if env_str("DSS_STORAGE_DIR") else "DSS_STATE_DIR"
if S3_BUCKET:
    DATA_STORAGE = {
        "BACKEND": "pipelines.storage.BucketStorage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "region_name": env_str("DSS_S3_REGION") or None,
            "endpoint_url": S3_ENDPOINT_URL or None,
            # Empty: boto3's own chain (AWS_* variables, instance or task role).
            "access_key": env_str("DSS_S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("DSS_S3_SECRET_ACCESS_KEY") or None,
            # S3-compatible stores (MinIO) expect bucket names in the path.
            "addressing_style": "path" if S3_ENDPOINT_URL else None,
            "file_overwrite": True,
            "default_acl": None,
        },
    }
else:
    DATA_STORAGE = {
        "BACKEND": "pipelines.storage.LocalFolderStorage",
        "OPTIONS": {"location": LOCAL_STORAGE_DIR},
    }
STORAGES = {
    "default": DATA_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
DATASETS_FOLDER = env_str("DSS_DATASETS_FOLDER", "datasets")

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Login: OpenID Connect when configured, Django's own username and password otherwise
# (dss/login.py). With OpenID Connect on there is no password door at all: the admin's login
# page sends people through the provider too, and the admin needs staff status.
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
if OIDC_ENABLED:
    INSTALLED_APPS.append("mozilla_django_oidc")
    AUTHENTICATION_BACKENDS = ["dss.login.AllowedPeopleBackend"]
    OIDC_RP_CLIENT_SECRET = env_str("OIDC_RP_CLIENT_SECRET")
    OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
    OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT")
    OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile")
    # Who may enter: an e-mail address in one of these domains, and/or a claim with a value.
    OIDC_ALLOWED_EMAIL_DOMAINS = [
        domain.lower().lstrip("@") for domain in env_list("OIDC_ALLOWED_EMAIL_DOMAINS")
    ]
    OIDC_REQUIRED_CLAIM = env_str("OIDC_REQUIRED_CLAIM")
    _missing = [
        name
        for name in (
            "OIDC_RP_CLIENT_SECRET",
            "OIDC_OP_AUTHORIZATION_ENDPOINT",
            "OIDC_OP_TOKEN_ENDPOINT",
            "OIDC_OP_USER_ENDPOINT",
        )
        if not globals()[name]
    ]
    if OIDC_RP_SIGN_ALGO.startswith("RS") and not OIDC_OP_JWKS_ENDPOINT:
        _missing.append("OIDC_OP_JWKS_ENDPOINT")
    if not OIDC_ALLOWED_EMAIL_DOMAINS and not OIDC_REQUIRED_CLAIM:
        _missing.append("OIDC_ALLOWED_EMAIL_DOMAINS or OIDC_REQUIRED_CLAIM")
    if _missing:
        raise SystemExit(f"OIDC_RP_CLIENT_ID is set, so these must be too: {', '.join(_missing)}")
    if OIDC_REQUIRED_CLAIM and "=" not in OIDC_REQUIRED_CLAIM:
        raise SystemExit(
            f"OIDC_REQUIRED_CLAIM={OIDC_REQUIRED_CLAIM!r}: write it as claim=value, "
            "e.g. groups=data-uploaders"
        )
    LOGIN_URL = "oidc_authentication_init"
    # A person the provider vouches for but the settings do not allow: a page that says so
    # (a page that needs login would send them straight back to the provider).
    LOGIN_REDIRECT_URL_FAILURE = "/login/refused/"
    # Signing out ends the provider's session too when its end-session endpoint is given
    # (RP-initiated logout, dss/login.py): the id token kept in the session names it. Either
    # way it ends on a page that needs no login, not straight back at the provider.
    OIDC_OP_LOGOUT_ENDPOINT = env_str("OIDC_OP_LOGOUT_ENDPOINT")
    if OIDC_OP_LOGOUT_ENDPOINT:
        OIDC_STORE_ID_TOKEN = True
        OIDC_OP_LOGOUT_URL_METHOD = "dss.login.provider_logout_url"
    LOGOUT_REDIRECT_URL = "signed_out"
else:
    AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    LOGIN_URL = "login"
    LOGOUT_REDIRECT_URL = "/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# GOV.UK Frontend's built files, installed by `npm ci` (package.json) and served as
# static/govuk/... (dss/static_finders.py); collectstatic copies them like any other.
GOVUK_FRONTEND_DIR = BASE_DIR / "node_modules" / "govuk-frontend" / "dist" / "govuk"
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "dss.static_finders.GovukFrontendFinder",
]

# Closed by default: a DRF view needs a HAWK-signed request from a client holding the view's
# scope unless it says otherwise (the OpenAPI document and its page say so in api/urls.py).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.HawkAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasEndpointScope"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "api.errors.json_error_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Data Store Service API",
    "DESCRIPTION": "Tabular datasets served page by page to HAWK-authenticated clients.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Parameter descriptions say what the values mean; the enum lists them.
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
    # Swagger UI's files are served by the service itself, not fetched from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# The service's own knobs.
PAGINATION_SIZE = env_int("DSS_PAGINATION_SIZE", 1000)
HAWK_SKEW_SECONDS = env_int("DSS_HAWK_SKEW", 60)
# A skew of 0 refuses every request; hours of skew keep replays of old requests possible and
# nonces for that long.
if not 1 <= HAWK_SKEW_SECONDS <= 3600:
    raise SystemExit(f"DSS_HAWK_SKEW={HAWK_SKEW_SECONDS}: must be between 1 and 3600 seconds")
# How long a table version replaced by a load stays readable by the reads that began on it.
RETENTION_SECONDS = env_int("DSS_TABLE_VERSION_RETENTION", 3600)
if RETENTION_SECONDS < 0:
    raise SystemExit("DSS_TABLE_VERSION_RETENTION: must be a number of seconds, 0 or more")
TABLE_VERSION_RETENTION = timedelta(seconds=RETENTION_SECONDS)
UPLOAD_INFERENCE_ROWS = env_int("DSS_UPLOAD_INFERENCE_ROWS", 100_000)
# Connections that COPY a large file into a new table at once (pipelines.copy_streams).
COPY_STREAMS = env_int("DSS_COPY_STREAMS", 2)
if not 1 <= COPY_STREAMS <= 16:
    raise SystemExit(f"DSS_COPY_STREAMS={COPY_STREAMS}: must be between 1 and 16")
UPLOAD_MAX_BYTES = env_int("DSS_UPLOAD_MAX_BYTES", 1 << 30)
# The verify page posts three fields a column (name, type, date format) and a table holds up
# to 1,600 columns; Django's default of 1,000 fields refused files of 331 columns or more.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 3 * 1600 + 100
DATAFLOW_BASE_URL = env_str("DATAFLOW_BASE_URL")
DATAFLOW_HAWK_ID = env_str("DATAFLOW_HAWK_ID")
DATAFLOW_HAWK_KEY = env_str("DATAFLOW_HAWK_KEY")
DATAFLOW_UPLOADER_DAG_ID = env_str("DATAFLOW_UPLOADER_DAG_ID", "DSSGenericPipeline")
# Where fetch_sources finds the ONS postcode directory's releases (empty: the catalogue's default).
ONS_POSTCODE_DIRECTORY_LISTING_URL = env_str("DSS_ONS_POSTCODE_DIRECTORY_LISTING_URL")
HMRC_EXPORTERS_LISTING_URL = env_str("DSS_HMRC_EXPORTERS_LISTING_URL")
COMPANIES_HOUSE_ACCOUNTS_LISTING_URL = env_str("DSS_COMPANIES_HOUSE_ACCOUNTS_LISTING_URL")

# Logs: JSON lines unless asked otherwise or written to a terminal.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOG_FORMAT = env_str("LOG_FORMAT") or ("plain" if sys.stderr.isatty() else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "datefmt": "%Y-%m-%dT%H:%M:%S%z",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replaces Django's own console handler, which would print its records a second time.
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.db.backends": {"level": "INFO"},
        # pgserver logs every server command at INFO, also from an atexit hook that runs
        # after the streams have closed; its warnings and errors still show.
        "pgserver": {"level": "WARNING"},
    },
}

SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    import sentry_sdk

    sentry_sdk.init(dsn=SENTRY_DSN, environment=env_str("SENTRY_ENVIRONMENT", "production"))
