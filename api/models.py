from django.contrib.postgres.fields import ArrayField
from django.db import models


class HawkClient(models.Model):
    """An API client: its HAWK id and key and the endpoint scopes it may call (``*`` for all)."""

    id = models.CharField(max_length=100, primary_key=True, verbose_name="HAWK id")
    # HAWK needs the key itself to compute MACs, so it cannot be stored hashed.
    key = models.CharField(max_length=256)
    scopes = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    description = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name = "HAWK client"

    # DRF puts the authenticated client where Django keeps the user, so code that asks any
    # request's user (logging, error reporting) gets a sensible answer.
    is_authenticated = True
    is_anonymous = False

    def __str__(self) -> str:
        return self.id

    def allows(self, scope: str) -> bool:
        return "*" in self.scopes or scope in self.scopes
