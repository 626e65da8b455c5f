"""GOV.UK Frontend's built files as static files, straight from ``node_modules``.

``npm ci`` (package.json) installs govuk-frontend; this finder offers the files the pages
use, under ``static/govuk/``: the stylesheet, the script (with their source maps) and the
fonts and images under ``assets/``. Nothing else of the package (its Sass, templates and
component sources) is collected or served. With the package missing, ``manage.py check``
warns and names the command that installs it.
"""

from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core import checks
from django.core.files.storage import FileSystemStorage

PREFIX = "govuk"
FILES = (
    "govuk-frontend.min.css",
    "govuk-frontend.min.css.map",
    "govuk-frontend.min.js",
    "govuk-frontend.min.js.map",
)
ASSETS = "assets"


class GovukFrontendFinder(BaseFinder):
    def __init__(self, *args, **kwargs) -> None:
        self.root = Path(settings.GOVUK_FRONTEND_DIR)
        self.storage = FileSystemStorage(location=self.root)
        self.storage.prefix = PREFIX

    def check(self, **kwargs) -> list[checks.CheckMessage]:
        if (self.root / FILES[0]).is_file():
            return []
        return [
            checks.Warning(
                f"GOV.UK Frontend is not installed ({self.root} has no {FILES[0]}): the "
                "pages have no styles",
                hint="Run npm ci in the project folder",
                id="dss.W001",
            )
        ]

    def names(self) -> list[str]:
        """The served files' paths under the package's dist/govuk folder."""
        assets = self.root / ASSETS
        found = [name for name in FILES if (self.root / name).is_file()]
        if assets.is_dir():
            found += sorted(
                path.relative_to(self.root).as_posix()
                for path in assets.rglob("*")
                if path.is_file()
            )
        return found

    def find(self, path: str, find_all: bool = False, **kwargs) -> str | list[str] | None:
        name = path.removeprefix(f"{PREFIX}/")
        served = name != path and (name in FILES or name.startswith(f"{ASSETS}/"))
        full = self.root / name
        if served and ".." not in Path(name).parts and full.is_file():
            return [str(full)] if find_all else str(full)
        return [] if find_all else None

    def list(self, ignore_patterns):
        for name in self.names():
            yield name, self.storage
