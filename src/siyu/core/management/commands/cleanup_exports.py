"""`siyu cleanup-exports`: the older name of `siyu cleanup-files` (cleanup_files.py), which
deletes expired import files as well as export files."""

from siyu.core.management.commands.cleanup_files import Command  # noqa: F401
