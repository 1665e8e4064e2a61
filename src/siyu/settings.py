"""The one settings module. Everything an operator may change is an environment variable
named SIYU_*; see the settings table in README.md."""

import os
from pathlib import Path

import dj_database_url

from siyu.core.keys import load_or_create_keys

BASE_DIR = Path(__file__).resolve().parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(f"SIYU_{name}", default)


def env_bool(name: str, default: bool = False) -> bool:
    return env(name, "1" if default else "0").lower() in {"1", "true", "yes", "on"}


SIYU_HOME = Path(env("HOME", "var")).resolve()
SIYU_HOME.mkdir(parents=True, exist_ok=True)

KEYS = load_or_create_keys(
    SIYU_HOME,
    secret_key=env("SECRET_KEY"),
    encryption_keys=env("ENCRYPTION_KEYS"),
    hash_key=env("HASH_KEY"),
)
SECRET_KEY = KEYS.secret_key
# Fernet keys, newest first: the first encrypts, all decrypt (rotation keeps old ones).
SIYU_ENCRYPTION_KEYS = KEYS.encryption_keys
SIYU_ENCRYPTION_KEYS_FROM_ENV = KEYS.encryption_keys_from_env
# HMAC key for blind-index lookups of phone/email; stable for the life of the data.
SIYU_HASH_KEY = KEYS.hash_key

DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = [h.strip() for h in env("ALLOWED_HOSTS", "*").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env("CSRF_TRUSTED_ORIGINS").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",  # serves the API docs (Swagger UI) from its own static files, not a CDN
    "django_tasks",
    "django_tasks_db",
    "siyu.core",
    "siyu.accounts",
    "siyu.contacts",
    "siyu.tracking",
    "siyu.segments",
    "siyu.messaging",
    "siyu.campaigns",
    "siyu.console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "siyu.console.middleware.ChineseFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "siyu.urls"
WSGI_APPLICATION = "siyu.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "siyu.console.context.console",
            ],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{SIYU_HOME / 'siyu.sqlite3'}"),
        conn_max_age=int(env("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the web server read while the worker writes; IMMEDIATE avoids upgrade deadlocks.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.Staff"
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]

LANGUAGE_CODE = env("LANGUAGE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = SIYU_HOME / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Third-party front-end assets come from npm (installed by `make install`), never a CDN.
NODE_MODULES = Path(env("NODE_MODULES", str(BASE_DIR.parent.parent / "node_modules")))
STATICFILES_DIRS = [("vendor/echarts", NODE_MODULES / "echarts" / "dist")]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

TASKS = {
    "default": {
        "BACKEND": env("TASK_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

SIYU_DEFAULT_REGION = env("DEFAULT_REGION", "CN")
# Reverse proxies whose X-Forwarded-For is believed (for the audit log's IP), e.g. 127.0.0.1.
SIYU_TRUSTED_PROXIES = frozenset(p.strip() for p in env("TRUSTED_PROXIES").split(",") if p.strip())
SIYU_DASHBOARD_CACHE_SECONDS = int(env("DASHBOARD_CACHE_SECONDS", "60"))
# Export files hold customer data: deleted this many hours after the export finished.
SIYU_EXPORT_RETENTION_HOURS = int(env("EXPORT_RETENTION_HOURS", "72"))
# Imports (CSV / XLSX): the largest file accepted and the most data rows in one file.
SIYU_IMPORT_MAX_BYTES = int(env("IMPORT_MAX_BYTES", str(50 * 1024 * 1024)))
SIYU_IMPORT_MAX_ROWS = int(env("IMPORT_MAX_ROWS", "500000"))
# Error reports of imports (the failed rows, phones and emails in clear): deleted this many
# hours after the import finished.
SIYU_IMPORT_REPORT_RETENTION_HOURS = int(env("IMPORT_REPORT_RETENTION_HOURS", "72"))
# Dynamic and built-in segments (and stages, tiers, RFM) are recomputed this often by the
# worker; real-time segments also follow each processed event. The CLV model is refitted
# nightly at this hour of the workspace's time zone.
SIYU_SEGMENT_REFRESH_MINUTES = int(env("SEGMENT_REFRESH_MINUTES", "15"))
SIYU_CLV_FIT_HOUR = int(env("CLV_FIT_HOUR", "3"))
# Where siyu is reached from outside (unsubscribe links, tracked short links, vendor
# receipt and reply callbacks), e.g. https://crm.example.cn
SIYU_PUBLIC_URL = env("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# A sender holds a channel this long unless it renews the hold (it does after every group);
# after a crash the channel's messages wait this long before another sender recovers them.
SIYU_SEND_LEASE_SECONDS = int(env("SEND_LEASE_SECONDS", "120"))
# Vendor API base URLs: the vendors' own by default; tests and private gateways point them
# elsewhere.
SIYU_ALIYUN_SMS_URL = env("ALIYUN_SMS_URL", "https://dysmsapi.aliyuncs.com").rstrip("/")
SIYU_TENCENT_SMS_URL = env("TENCENT_SMS_URL", "https://sms.tencentcloudapi.com").rstrip("/")
SIYU_WECOM_URL = env("WECOM_URL", "https://qyapi.weixin.qq.com").rstrip("/")
SIYU_WECHAT_URL = env("WECHAT_URL", "https://api.weixin.qq.com").rstrip("/")
# Webhooks may call private and loopback addresses (off: operators must not reach into the
# server's own network through a webhook URL).
SIYU_WEBHOOK_ALLOW_PRIVATE = env_bool("WEBHOOK_ALLOW_PRIVATE", False)
# Aliyun's QuerySendDetails can lag behind SendSms: after a crash, a message not found is
# sent again only once it is older than this.
SIYU_ALIYUN_LOOKUP_LAG_SECONDS = int(env("ALIYUN_LOOKUP_LAG_SECONDS", "120"))
# An upload larger than SIYU_IMPORT_MAX_BYTES is refused while it arrives, before Django
# writes it to a temporary file (siyu/core/uploads.py); then the usual handlers.
FILE_UPLOAD_HANDLERS = [
    "siyu.core.uploads.LimitedUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # httpx logs every request URL at INFO, and vendor URLs carry secrets and tokens
        "httpx": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}

SIYU_BIND_HOST = env("HOST", "127.0.0.1")
SIYU_PORT = int(env("PORT", "8000"))
