"""Settings for every environment, read from the environment.

Development needs no variables at all: SQLite under ``var/``, Redis on localhost, DEBUG on.
Production uses ``vbqweb.settings_production``, which imports this module and hardens it.

Variables:
    DJANGO_SECRET_KEY    the secret key (required in production)
    DJANGO_DEBUG         "1" to enable debug (default on here, always off in production)
    DJANGO_ALLOWED_HOSTS comma-separated host names
    DATABASE_URL         e.g. postgres://user:pass@host:5432/db; SQLite when unset
    REDIS_URL            the Celery broker, default redis://127.0.0.1:6379/0
    VBQ_VAR_DIR          where SQLite and uploaded media live by default (default ./var)
    VBQ_MEDIA_ROOT       where de-identified instances are stored (default $VBQ_VAR_DIR/media)
    VBQ_TASK_TIME_LIMIT  hard time limit of one task in seconds (default 600)
    VBQ_INGEST_TIME_LIMIT hard time limit of one upload's ingest in seconds (default 3600)
    VBQ_DEID_SECRET      the HMAC key of the de-identification (UIDs, pseudonyms, date shifts);
                         DJANGO_SECRET_KEY when empty. Keep it constant for the site's lifetime.
    VBQ_UPLOAD_ROOT      where uploads wait for the ingest (default $VBQ_VAR_DIR/uploads)
    VBQ_ANALYSIS_DELAY   seconds after the last submission before the agreement is recomputed
                         (default 30)
    VBQ_DISPATCH_EVERY   seconds between two runs of the outbox's dispatcher (default 5)
    VBQ_TEST_PAUSE       tests only ("score=600,ingest=600"): pause a task there so that a fault
                         test can kill its worker mid-task; production settings refuse it
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VBQ_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean flag: "1", "true", "yes" and "on" (any case) are true."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# A fixed development key: production refuses to start without DJANGO_SECRET_KEY.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-development-only-never-use-this-key-in-production"
)
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "vbqweb",
    "studies",
    "readers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Blinding: every page is login-only unless its view is marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "vbqweb.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "vbqweb.wsgi.application"

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite creates the file, not its folder
    # The web process and the Celery worker share the file: wait for locks instead of failing,
    # and take the write lock at BEGIN so that two writers never deadlock on an upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # A file, not memory, so that the Celery worker process of the integration tests sees it
    # (it is handed the name); one per test process, so that two test runs never share one.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("VBQ_STATIC_ROOT", VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("VBQ_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media-not-served/"  # instances are served only through access-checked views

# De-identified instances go through Django's storage API (``default``), so that a deployment can
# swap in an S3-compatible backend without touching the code.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Ingest ------------------------------------------------------------------------------------
# The de-identification's HMAC key; SECRET_KEY when empty (studies.uploads.config.deid_config).
VBQ_DEID_SECRET = os.environ.get("VBQ_DEID_SECRET", "")
# Uploaded bytes wait here, one folder per upload under server-chosen names, until the ingest
# task ends (then the folder is deleted, also on failure and on cancel). Not under MEDIA_ROOT.
VBQ_UPLOAD_ROOT = Path(os.environ.get("VBQ_UPLOAD_ROOT", VAR_DIR / "uploads"))
# One request of the chunked upload: at most this many bytes and this many file pieces, so
# Django's own limits (DATA_UPLOAD_MAX_MEMORY_SIZE, DATA_UPLOAD_MAX_NUMBER_FILES) stay as they are:
# a chunk is a raw body streamed to disk, never parsed as a form.
VBQ_UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024
VBQ_UPLOAD_CHUNK_PIECES = 100
# Overrides of IngestLimits (studies.ingest; files per upload, bytes per file and per upload, zip
# ratio, pixel bytes ...); the defaults fit MR case sets with a wide margin.
VBQ_INGEST_LIMITS: dict[str, float] = {}

# --- Celery ------------------------------------------------------------------------------------
# Background work goes through the outbox (vbqweb.jobs): a row recorded with the change, sent
# after commit, sent again by the dispatcher when it is due. Queues and deadlines: vbqweb.tasks.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
VBQ_TASK_TIME_LIMIT = int(os.environ.get("VBQ_TASK_TIME_LIMIT", "600"))
VBQ_INGEST_TIME_LIMIT = int(os.environ.get("VBQ_INGEST_TIME_LIMIT", "3600"))
# The agreement is recomputed this long after the last submission (a burst costs one run).
VBQ_ANALYSIS_DELAY = float(os.environ.get("VBQ_ANALYSIS_DELAY", "30"))
# The dispatcher's period: a job whose send failed waits at most about this long once the
# broker is back; a lost job is sent again this long after its deadline at most.
VBQ_DISPATCH_EVERY = float(os.environ.get("VBQ_DISPATCH_EVERY", "5"))
# Tests only: {pause point: seconds} (vbqweb.jobs.pause_point), from "score=600,ingest=600".
VBQ_TEST_PAUSE: dict[str, float] = {
    name.strip(): float(seconds)
    for name, _, seconds in (
        item.partition("=") for item in env_list("VBQ_TEST_PAUSE", "") if "=" in item
    )
}

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True  # the database, not the result backend, holds every outcome
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = VBQ_TASK_TIME_LIMIT
CELERY_TASK_SOFT_TIME_LIMIT = int(VBQ_TASK_TIME_LIMIT * 0.9)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redelivery of an unacknowledged task by the broker: a backstop only (the outbox re-sends
    # lost work within its deadline). Above the longest task, so that a running task is not
    # delivered twice for nothing.
    "visibility_timeout": int(max(VBQ_TASK_TIME_LIMIT, VBQ_INGEST_TIME_LIMIT) * 1.1),
    # A broker that accepts connections but never answers must not hang a worker or beat.
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    "max_retries": 2,
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Every task to the queue of its kind of work (defined once, in vbqweb.tasks).
CELERY_TASK_ROUTES = ["vbqweb.tasks.route"]
# Celery beat, in a process of its own (one scheduler, whatever the number of workers): the
# outbox's dispatcher every few seconds, the uploads' upkeep every minute. A copy not picked up
# in time expires: a worker that was down does not run a backlog of dispatchers.
CELERY_BEAT_SCHEDULE = {
    "dispatch-jobs": {
        "task": "vbqweb.tasks.dispatch_jobs",
        "schedule": VBQ_DISPATCH_EVERY,
        "options": {"queue": "dispatch", "expires": max(2 * VBQ_DISPATCH_EVERY, 10)},
    },
    "tidy-uploads": {
        "task": "studies.tasks.tidy_uploads",
        "schedule": 60.0,
        "options": {"queue": "dispatch", "expires": 120},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("VBQ_LOG_LEVEL", "INFO")},
}

# The viewer's codecs (static/dist/wasm/, built by `npm run build`) must be served as
# application/wasm, or browsers refuse to compile them as they stream. WhiteNoise and Python's
# table both know the type on a full Debian; a slim image may lack /etc/mime.types.
mimetypes.add_type("application/wasm", ".wasm")
WHITENOISE_MIMETYPES = {".wasm": "application/wasm"}

# --- Browser hardening (issue 12) ----------------------------------------------------------------
# Response headers that limit what a page can load, leak or keep. README "Configuration" and
# vbqweb/hardening.py say why; tests/vbqweb/test_hardening.py and the browser tests check them.
from csp.constants import NONCE, NONE, SELF, WASM_UNSAFE_EVAL  # noqa: E402 (kept in this block)

INSTALLED_APPS = [*INSTALLED_APPS, "csp"]  # django-csp's checks of its settings
# After WhiteNoise, which answers static files itself: pages, JSON and downloads get the
# headers; the bundle, the decode worker and the wasm codecs keep WhiteNoise's caching.
MIDDLEWARE.insert(
    MIDDLEWARE.index("whitenoise.middleware.WhiteNoiseMiddleware") + 1,
    "vbqweb.hardening.HardeningMiddleware",
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("vbqweb.hardening.HardeningMiddleware") + 1, "csp.middleware.CSPMiddleware"
)
# Content-Security-Policy (django-csp 4 format). No inline script and no eval anywhere: every
# script is a static file. The viewer (Cornerstone3D, docs/viewer.md) needs worker-src for its
# decode worker (a static file of this origin) and blob: images (the annotation tools draw
# their mouse cursors as blob: SVGs). 'wasm-unsafe-eval' (WebAssembly compilation only, never
# JavaScript eval) is for its wasm decoders: Chromium runs the worker under the worker file's
# own policy (none: static files), but a blob: worker, or a browser that gives a worker its
# page's policy, compiles them under this one. Inline styles: the report's one <style> element
# carries the response's nonce; style attributes (the SVG figures are full of them) are
# allowed, as they can neither run code nor load from another origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, WASM_UNSAFE_EVAL],
        "worker-src": [SELF],
        "connect-src": [SELF],
        "img-src": [SELF, "blob:"],
        "style-src": [SELF, NONCE],
        "style-src-attr": ["'unsafe-inline'"],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Links to other sites carry no path (a URL of this site names studies and readings).
SECURE_REFERRER_POLICY = "same-origin"
# Browser features no page of the site uses (vbqweb.hardening.HardeningMiddleware).
VBQ_PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []  # allowed to no origin
    for feature in (
        "accelerometer",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}
