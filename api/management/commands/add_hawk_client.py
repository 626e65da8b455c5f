from django.core.management.base import BaseCommand, CommandError

from api.models import HawkClient


class Command(BaseCommand):
    help = "Add an API client with its HAWK id, key and scopes. The key is never printed."

    def add_arguments(self, parser):
        parser.add_argument("--id", required=True, dest="client_id", help="the client's HAWK id")
        parser.add_argument("--key", required=True, help="the client's HAWK secret key")
        parser.add_argument(
            "--scopes",
            required=True,
            help="comma-separated endpoint scopes, e.g. table_structure,table_data, or * for all",
        )
        parser.add_argument("--description", required=True, help="who the client is")

    def handle(self, *args, client_id, key, scopes, description, **options):
        client_id = client_id.strip()
        scope_list = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        for name, value in [
            ("--id", client_id),
            ("--key", key.strip()),
            ("--scopes", scope_list),
            ("--description", description.strip()),
        ]:
            if not value:
                raise CommandError(f"{name} must not be empty")
        if HawkClient.objects.filter(id=client_id).exists():
            raise CommandError(f"a HAWK client with id {client_id!r} already exists")
        HawkClient.objects.create(
            id=client_id, key=key, scopes=scope_list, description=description.strip()
        )
        self.stdout.write(f"Added HAWK client {client_id!r} with scopes {', '.join(scope_list)}")
