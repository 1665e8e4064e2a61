"""The `siyu` command: friendly names for the management commands, and every Django command
besides (`siyu shell`, `siyu makemigrations`, ...)."""

import os
import sys

ALIASES = {
    "seed-demo": "seed_demo",
    "check": "siyu_check",
    "rotate-key": "rotate_key",
    "rebuild-aggregates": "rebuild_aggregates",
    "cleanup-files": "cleanup_files",
    "cleanup-exports": "cleanup_files",  # its older name
    "refresh-segments": "refresh_segments",
    "django-check": "check",
}

USAGE = """usage: siyu <command> [options]

  serve [--port N]          serve the console and API (gunicorn)
  worker                    run a background task worker
  migrate                   create or upgrade the database
  demo [--no-serve]         migrate, load the demo brand, serve with a worker
  seed-demo --contacts N    add N synthetic contacts to the demo workspace
  createadmin --email E --password P --workspace SLUG --role ROLE
  apikey create --workspace SLUG --name NAME [--role ROLE]
  writekey create --workspace SLUG --name NAME   (Segment-compatible collection key)
  check                     database, migrations, worker, encryption key
  rotate-key                re-encrypt PII under a new encryption key
  rebuild-aggregates        recompute per-contact stats and daily event counts
  cleanup-files             delete export files and import reports past their retention
                            and old import uploads (also: cleanup-exports)
  refresh-segments [--workspace SLUG]
                            score every contact (stage, tier, RFM), refresh all segments
  clv fit --csv FILE --customer COL --date COL --amount COL [--until DATE] [--unit days|weeks]
  clv fit --workspace SLUG  fit BG/NBD + Gamma-Gamma lifetime value; prints one JSON object

Any other Django management command works too (siyu shell, siyu makemigrations, ...).
"""


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    if len(argv) < 2 or argv[1] in {"-h", "--help", "help"}:
        print(USAGE)
        return
    argv[1] = ALIASES.get(argv[1], argv[1])
    argv[0] = "siyu"
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
