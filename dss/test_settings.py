"""Settings for the test suite: the production settings with test-only defaults.

The tests use the server in DATABASE_URL when it is set and the embedded one when not.
"""

import os
from pathlib import Path

# The tests are configured by the environment alone, not by a developer's .env.
os.environ.setdefault("DSS_ENV_FILE", os.devnull)
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key")
os.environ.setdefault(
    "DSS_STATE_DIR", str(Path(__file__).resolve().parent.parent / ".state" / "tests")
)

from dss.settings import *  # noqa: F403

# Tests run many small requests; password hashing is not under test.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
# Serve static files from the apps' folders; the suite never runs collectstatic.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
