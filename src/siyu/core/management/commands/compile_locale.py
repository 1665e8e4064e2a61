from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand


def compile_locale_dir(messages_dir: Path) -> Path | None:
    """Merge every *.po in one LC_MESSAGES folder into django.mo. Each area of the product
    keeps its own .po file so that changes to one never conflict with another."""
    sources = sorted(messages_dir.glob("*.po"))
    if not sources:
        return None
    merged = polib.POFile()
    merged.metadata = {
        "Content-Type": "text/plain; charset=UTF-8",
        "Plural-Forms": "nplurals=1; plural=0;",
    }
    seen: set[tuple[str, str | None]] = set()
    for source in sources:
        for entry in polib.pofile(str(source)).translated_entries():
            key = (entry.msgid, entry.msgctxt)
            if key not in seen and "fuzzy" not in entry.flags:
                seen.add(key)
                merged.append(entry)
    target = messages_dir / "django.mo"
    merged.save_as_mofile(str(target))
    return target


class Command(BaseCommand):
    help = "Compile the console translations (.po → django.mo) in pure Python; no gettext needed."
    requires_system_checks = []

    def handle(self, *args, **options):
        for locale_dir in settings.LOCALE_PATHS:
            for messages_dir in Path(locale_dir).glob("*/LC_MESSAGES"):
                target = compile_locale_dir(messages_dir)
                if target:
                    self.stdout.write(f"compiled {target}")
