import os
import sys

from django.core.management.base import BaseCommand, CommandError

from api.keys import MIN_KEY_LENGTH, key_problem, new_key
from api.models import HawkClient

KEY_VARIABLE = "DSS_HAWK_CLIENT_KEY"


class Command(BaseCommand):
    help = (
        "Add an API client with its HAWK id and scopes. Without --key-from-stdin or "
        f"--key-from-env, a strong key is generated and printed once; a given key (at least "
        f"{MIN_KEY_LENGTH} characters) is never printed. Keys never go on the command line."
    )
    # call_command(..., stdin=...) reads the key from that stream instead of sys.stdin.
    stealth_options = ("stdin",)

    def create_parser(self, prog_name, subcommand, **kwargs):
        # No abbreviations: an old "--key KEY" must be refused as unknown, not taken as
        # "--key-from-...".
        return super().create_parser(prog_name, subcommand, allow_abbrev=False, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--id", required=True, dest="client_id", help="the client's HAWK id")
        parser.add_argument(
            "--scopes",
            required=True,
            help="comma-separated endpoint scopes, e.g. table_structure,table_data, or * for all",
        )
        parser.add_argument("--description", required=True, help="who the client is")
        source = parser.add_mutually_exclusive_group()
        source.add_argument(
            "--key-from-stdin",
            action="store_true",
            help="read the key from standard input (its first line)",
        )
        source.add_argument(
            "--key-from-env",
            action="store_true",
            help=f"read the key from the environment variable {KEY_VARIABLE}",
        )

    def handle(self, *args, client_id, scopes, description, **options):
        client_id = client_id.strip()
        scope_list = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        for name, value in [
            ("--id", client_id),
            ("--scopes", scope_list),
            ("--description", description.strip()),
        ]:
            if not value:
                raise CommandError(f"{name} must not be empty")
        if HawkClient.objects.filter(id=client_id).exists():
            raise CommandError(f"a HAWK client with id {client_id!r} already exists")
        key, generated = self.given_key(options)
        HawkClient.objects.create(
            id=client_id, key=key, scopes=scope_list, description=description.strip()
        )
        self.stdout.write(f"Added HAWK client {client_id!r} with scopes {', '.join(scope_list)}")
        if generated:
            self.stdout.write("Its key, shown only now:")
            self.stdout.write(key)

    def given_key(self, options: dict) -> tuple[str, bool]:
        """The key to store and whether it was generated here; CommandError for a bad key."""
        if options["key_from_stdin"]:
            stream = options.get("stdin") or sys.stdin
            key, origin = stream.readline().rstrip("\r\n"), "standard input"
        elif options["key_from_env"]:
            key, origin = os.environ.get(KEY_VARIABLE, ""), KEY_VARIABLE
        else:
            return new_key(), True
        problem = key_problem(key)
        if problem:
            raise CommandError(f"{origin}: {problem}")
        return key, False
