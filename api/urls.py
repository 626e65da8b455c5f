"""API routes; the HAWK-authenticated endpoints are added here."""

urlpatterns: list = []
