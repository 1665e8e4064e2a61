"""Small file helpers shared by the jobs that write customer data to disk."""

from pathlib import Path


def unlink_if_present(path: Path) -> bool:
    """Delete a file; False if it was already gone (another worker's cleanup got there)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
