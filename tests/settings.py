"""Test settings: the product's settings with fixed throwaway keys, tasks run inline and a
fast password hasher. The database comes from SIYU_DATABASE_URL (the Makefile sets it to
SIYU_TEST_DATABASE_URL for the PostgreSQL run) or is SQLite."""

import os
import tempfile

_home = tempfile.mkdtemp(prefix="siyu-test-")
os.environ["SIYU_HOME"] = _home
os.environ.setdefault("SIYU_DATABASE_URL", f"sqlite:///{_home}/test.sqlite3")
os.environ["SIYU_SECRET_KEY"] = "test-only-secret-key-not-for-production"  # noqa: S105
os.environ["SIYU_ENCRYPTION_KEYS"] = "Q2hhbmdlTWVDaGFuZ2VNZUNoYW5nZU1lQ2hhbmdlTWU="
os.environ["SIYU_HASH_KEY"] = "test-only-hash-key"
os.environ["SIYU_TASK_BACKEND"] = "django_tasks.backends.immediate.ImmediateBackend"

from siyu.settings import *  # noqa: E402,F403

# the fake vendors and webhook receivers listen on 127.0.0.1
SIYU_WEBHOOK_ALLOW_PRIVATE = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LANGUAGE_CODE = "zh-hans"

# aiosmtpd (the tests' SMTP server) logs every connection at INFO from its own thread, which
# outlives a test's captured output: keep it to real problems
LOGGING["loggers"]["mail.log"] = {"level": "ERROR", "propagate": False}  # noqa: F405
