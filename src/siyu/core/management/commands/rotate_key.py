from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from siyu.core import crypto
from siyu.core.keys import encryption_keys_file, new_fernet_key


def encrypted_columns():
    """Every (model, field) that holds Fernet tokens. Add new encrypted fields here."""
    from siyu.contacts.models import Identity
    from siyu.messaging.models import AccessToken, ChannelConfig

    return [
        (Identity, "value_enc"),
        (ChannelConfig, "secrets_enc"),  # vendor credentials
        (AccessToken, "token_enc"),  # cached vendor access tokens
    ]


def reencrypt_all(batch_size: int = 2000) -> int:
    """Re-encrypt every stored token under the newest key, in batches, each atomic."""
    total = 0
    for model, field in encrypted_columns():
        last_id = 0
        while True:
            with transaction.atomic():
                rows = list(
                    model.objects.select_for_update()
                    .filter(pk__gt=last_id)
                    .exclude(**{field: ""})
                    .order_by("pk")
                    .only("pk", field)[:batch_size]
                )
                if not rows:
                    break
                for row in rows:
                    setattr(row, field, crypto.rotate(getattr(row, field)))
                model.objects.bulk_update(rows, [field])
            last_id = rows[-1].pk
            total += len(rows)
    return total


class Command(BaseCommand):
    help = (
        "Rotate the PII encryption key: add a new key (file mode) and re-encrypt all data. "
        "With SIYU_ENCRYPTION_KEYS set, put the new key first yourself, then run this."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--drop-old",
            action="store_true",
            help="after re-encrypting, remove the old keys from the key file",
        )
        parser.add_argument(
            "--reencrypt-only",
            action="store_true",
            help="do not add a key; re-encrypt under the current newest key",
        )

    def handle(self, *args, drop_old, reencrypt_only, **options):
        path = encryption_keys_file(settings.SIYU_HOME)
        from_env = settings.SIYU_ENCRYPTION_KEYS_FROM_ENV
        if not reencrypt_only:
            if from_env:
                raise CommandError(
                    "keys come from SIYU_ENCRYPTION_KEYS: put a new key first "
                    "(siyu rotate-key prints none), then run with --reencrypt-only"
                )
            keys = [new_fernet_key(), *settings.SIYU_ENCRYPTION_KEYS]
            path.write_text("\n".join(keys) + "\n")
            settings.SIYU_ENCRYPTION_KEYS = keys
            self.stdout.write(f"added a new key to {path}")
        count = reencrypt_all()
        self.stdout.write(f"re-encrypted {count} value(s) under the newest key")
        if drop_old and not from_env:
            # Running servers and workers re-read the key file on their next use; a value one
            # of them encrypted under the old key while the first pass ran is caught here.
            count = reencrypt_all()
            self.stdout.write(f"second pass: re-encrypted {count} value(s)")
            path.write_text(settings.SIYU_ENCRYPTION_KEYS[0] + "\n")
            settings.SIYU_ENCRYPTION_KEYS = settings.SIYU_ENCRYPTION_KEYS[:1]
            self.stdout.write("removed the old keys")
