"""Settings for every environment, read from the environment.

Development needs no variables at all: SQLite under ``var/``, Redis on localhost, DEBUG on.
Production uses ``vbqweb.settings_production``, which imports this module and hardens it.

Variables:
    DJANGO_SECRET_KEY    the secret key (required in production)
    DJANGO_DEBUG         "1" to enable debug (default on here, always off in production)
    DJANGO_ALLOWED_HOSTS comma-separated host names
    DATABASE_URL         e.g. postgres://user:pass@host:5432/db; SQLite when unset
    DATABASE_CONN_MAX_AGE seconds a database connection is kept between requests (default 0)
    DATABASE_CONN_HEALTH_CHECKS "0" to skip the check of a kept connection (default on)
    REDIS_URL            the Celery broker, default redis://127.0.0.1:6379/0; with the
                         password when Redis has one: redis://:PASSWORD@host:6379/0
    VBQ_VAR_DIR          where SQLite and uploaded media live by default (default ./var)
    VBQ_MEDIA_ROOT       where de-identified instances are stored (default $VBQ_VAR_DIR/media)
    VBQ_TASK_TIME_LIMIT  hard time limit of one task in seconds (default 600)
    VBQ_INGEST_TIME_LIMIT hard time limit of one upload's ingest in seconds (default 3600)
    VBQ_DEID_SECRET      the HMAC key of the de-identification (UIDs, pseudonyms, date shifts);
                         DJANGO_SECRET_KEY when empty. Keep it constant for the site's lifetime.
    VBQ_UPLOAD_ROOT      where uploads wait for the ingest (default $VBQ_VAR_DIR/uploads)
    VBQ_STORAGE          "local" (default: instances under VBQ_MEDIA_ROOT, uploads under
                         VBQ_UPLOAD_ROOT) or "s3" (both in one S3-compatible bucket, prefixes
                         media/ and staging/; web and worker then share no disk; docs/storage.md)
    VBQ_S3_ENDPOINT_URL  the S3 endpoint, e.g. http://seaweedfs:8333 (empty: AWS)
    VBQ_S3_BUCKET        the bucket (it must exist)
    VBQ_S3_ACCESS_KEY_ID, VBQ_S3_SECRET_ACCESS_KEY  the store's credentials
    VBQ_S3_REGION        the bucket's region (default us-east-1)
    VBQ_ANALYSIS_DELAY   seconds after the last submission before the agreement is recomputed
                         (default 30)
    VBQ_DISPATCH_EVERY   seconds between two runs of the outbox's dispatcher (default 5)
    VBQ_REVISION_COALESCE_SECONDS a reading's autosaves within this many seconds of its latest
                         revision replace it rather than add one (default 600; docs/audit.md)
    VBQ_LOCKOUT_FAILURES failed sign-ins that lock an account, and an address (default 5)
    VBQ_LOCKOUT_MINUTES  how long a lock lasts (default 15)
    VBQ_PROXY_COUNT      reverse proxies appending to X-Forwarded-For (default 0: REMOTE_ADDR)
    VBQ_MFA_REQUIRED     "0" to let managers and admins sign in without TOTP (default on)
    VBQ_SESSION_IDLE_MINUTES, VBQ_SESSION_MAX_HOURS  session limits (default 30 min, 12 h)
    VBQ_DICOMWEB_CACHE_MB  memory per web process for repeated DICOMweb answers (default 128)
    VBQ_PASSWORD_LINK_HOURS  password-reset and invitation links expire (default 72)
    DJANGO_EMAIL_BACKEND (default: the console), DJANGO_EMAIL_HOST, DJANGO_EMAIL_PORT,
    DJANGO_EMAIL_HOST_USER, DJANGO_EMAIL_HOST_PASSWORD, DJANGO_EMAIL_USE_TLS,
    DJANGO_DEFAULT_FROM_EMAIL  mail for password resets and invitations
    VBQ_TEST_PAUSE       tests only ("score=600,ingest=600"): pause a task there so that a fault
                         test can kill its worker mid-task; production settings refuse it
"""

from __future__ import annotations

import mimetypes
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from vbqweb.gunicorn_conf import threads as WEB_THREADS  # gunicorn's threads: one default

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
    # Accounts (issue 12): lockout, TOTP, the /accounts/ pages (vbqweb/accounts/)
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "vbqweb.accounts",
    # The audit trail (issue 12): append-only, hash-chained (vbqweb/audit/, docs/audit.md)
    "vbqweb.audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A repeated WADO-RS request of a session already granted its series, answered from memory
    # before the session is loaded (readers/dicomweb/fastpath.py, docs/dicomweb.md).
    "readers.dicomweb.fastpath.FastPathMiddleware",
    # A database that cannot be reached answers 503 + Retry-After, not a 500 page: outside every
    # middleware that queries it (the session first). vbqweb/faults.py says why.
    "vbqweb.faults.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The request being answered, for audit events recorded below the views (role changes).
    "vbqweb.audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Idle and absolute session limits: an expired session is logged out here, before anything
    # below answers (pages redirect to the login, JSON answers 401 as for any anonymous call).
    "vbqweb.accounts.middleware.SessionLimitsMiddleware",
    # request.user.is_verified() (django-otp), then: a second factor before anything else.
    "django_otp.middleware.OTPMiddleware",
    "vbqweb.accounts.middleware.MfaMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Blinding: every page is login-only unless its view is marked @login_not_required.
    # A script's call (the viewer's JSON, DICOMweb) gets 401 JSON, not a redirect to HTML.
    "vbqweb.login_required.LoginRequiredMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the lockout page (429).
    "axes.middleware.AxesMiddleware",
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
        # A kept connection (DATABASE_CONN_MAX_AGE > 0) is checked before a request's first query
        # and reopened if the server restarted meanwhile, instead of failing that request.
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite creates the file, not its folder
    # The web process and the Celery worker share the file: wait for locks instead of failing,
    # and take the write lock at BEGIN so that two writers never deadlock on an upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # Django's SQLite backend with the writers queued for the write lock rather than sleeping
    # on SQLite's busy handler (vbqweb/sqlite_backend/base.py says why).
    DATABASES["default"]["ENGINE"] = "vbqweb.sqlite_backend"
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

# --- Accounts: lockout, MFA, sessions, mail (issue 12; vbqweb/accounts/, README) -----------------
# django-axes first: it refuses a locked-out account or address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "vbqweb.accounts.backends.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# After this many failed sign-ins, per account and per address (each counted on its own), both
# are locked for VBQ_LOCKOUT_MINUTES; a site admin unlocks in /admin/ (Axes › Access attempts).
VBQ_LOCKOUT_FAILURES = int(os.environ.get("VBQ_LOCKOUT_FAILURES", "5"))
VBQ_LOCKOUT_MINUTES = float(os.environ.get("VBQ_LOCKOUT_MINUTES", "15"))
# Reverse proxies in front of the site that append to X-Forwarded-For (0: REMOTE_ADDR is the
# client). Behind one proxy without this, every sign-in comes from the proxy's address.
VBQ_PROXY_COUNT = int(os.environ.get("VBQ_PROXY_COUNT", "0"))
AXES_FAILURE_LIMIT = VBQ_LOCKOUT_FAILURES
AXES_COOLOFF_TIME = timedelta(minutes=VBQ_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success does not clear the counts: it would clear the address's too, so anyone with one
# account could try passwords on the others from their address without end.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "vbqweb.accounts.lockout.lockout_response"
AXES_CLIENT_IP_CALLABLE = "vbqweb.accounts.lockout.client_ip"
AXES_VERBOSE = False
# TOTP second factor (django-otp): required for study managers and site admins (and staff)
# when VBQ_MFA_REQUIRED is on; readers may enrol. The issuer names the site in the app.
VBQ_MFA_REQUIRED = env_bool("VBQ_MFA_REQUIRED", True)
OTP_TOTP_ISSUER = "VBQ Reader Studies"
# Sessions end after VBQ_SESSION_IDLE_MINUTES without a request, VBQ_SESSION_MAX_HOURS after
# sign-in whatever happens, and when the browser closes (vbqweb.accounts.middleware).
VBQ_SESSION_IDLE_MINUTES = float(os.environ.get("VBQ_SESSION_IDLE_MINUTES", "30"))
VBQ_SESSION_MAX_HOURS = float(os.environ.get("VBQ_SESSION_MAX_HOURS", "12"))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_AGE = int(VBQ_SESSION_MAX_HOURS * 3600)  # the stored session never outlives it
# Memory per web process for the DICOMweb fast path's cached responses (docs/dicomweb.md).
VBQ_DICOMWEB_CACHE_MB = float(os.environ.get("VBQ_DICOMWEB_CACHE_MB", "128"))
# Password-reset and invitation links: single use, valid this long.
PASSWORD_RESET_TIMEOUT = int(float(os.environ.get("VBQ_PASSWORD_LINK_HOURS", "72")) * 3600)
# Mail (password resets, invitations): printed to the console unless a backend is configured.
EMAIL_BACKEND = os.environ.get(
    "DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = os.environ.get("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("DJANGO_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("DJANGO_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DJANGO_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "vbq@localhost")

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("VBQ_STATIC_ROOT", VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("VBQ_MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "/media-not-served/"  # instances are served only through access-checked views
# Stored files are for this site's own user only: instances hold pixel data of patients.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# Every stored byte goes through Django's storage API (docs/storage.md): ``default`` holds the
# de-identified instances (and any generated file), ``staging`` an upload's bytes until its ingest
# ends. Local disk by default; VBQ_STORAGE=s3 puts both in one S3-compatible bucket (prefixes
# media/ and staging/), so that web and worker share nothing but the database, Redis and S3.
VBQ_STORAGE = os.environ.get("VBQ_STORAGE", "local").strip().lower() or "local"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # VBQ_UPLOAD_ROOT (below), read when used: files 0600, folders 0700.
    "staging": {"BACKEND": "vbqweb.storage.UploadRootStorage"},
    # collectstatic writes a gzip and a Brotli copy beside each file; WhiteNoise serves them to
    # browsers that accept them (the viewer bundle and its codecs shrink ~4x). No manifest here,
    # so tests and DEBUG need no collectstatic; production adds hashed names (settings_production).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if VBQ_STORAGE == "s3":
    from botocore.config import Config as _BotoConfig

    _S3 = {
        "bucket_name": os.environ.get("VBQ_S3_BUCKET", ""),
        "endpoint_url": os.environ.get("VBQ_S3_ENDPOINT_URL") or None,
        "access_key": os.environ.get("VBQ_S3_ACCESS_KEY_ID") or None,
        "secret_key": os.environ.get("VBQ_S3_SECRET_ACCESS_KEY") or None,
        "region_name": os.environ.get("VBQ_S3_REGION", "us-east-1"),
        "default_acl": None,  # private: the bucket's policy; images reach browsers via DICOMweb
        "querystring_auth": True,  # no public URL is ever made (MEDIA_URL is not served)
        "max_memory_size": 0,  # an object read is buffered in memory, never on local disk
        # An outage is found out within seconds (the ingest then waits and retries; DICOMweb
        # answers 503), not after botocore's default minute of retries.
        "client_config": _BotoConfig(
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path"},
            signature_version="s3v4",
        ),
    }
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        # Never overwrite: a concurrent ingest that lost the race deletes its own copy only.
        "OPTIONS": {**_S3, "location": "media", "file_overwrite": False},
    }
    STORAGES["staging"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        # The transfer names every object and replaces a piece it rewrites.
        "OPTIONS": {**_S3, "location": "staging", "file_overwrite": True},
    }
elif VBQ_STORAGE != "local":
    raise ValueError(f"VBQ_STORAGE must be 'local' or 's3', not {VBQ_STORAGE!r}")
# An ingest stopped by an object store that cannot be reached goes back to the queue and is
# tried again this many seconds later (an outage costs the upload no attempt).
VBQ_STORAGE_RETRY_AFTER = float(os.environ.get("VBQ_STORAGE_RETRY_AFTER", "10"))

# --- Ingest ------------------------------------------------------------------------------------
# The de-identification's HMAC key; SECRET_KEY when empty (studies.uploads.config.deid_config).
VBQ_DEID_SECRET = os.environ.get("VBQ_DEID_SECRET", "")
# Uploaded bytes wait here (the local ``staging`` storage; with VBQ_STORAGE=s3, in the bucket),
# one folder per upload under server-chosen names, until the ingest task ends (then they are
# deleted, also on failure and on cancel). Not under MEDIA_ROOT.
VBQ_UPLOAD_ROOT = Path(os.environ.get("VBQ_UPLOAD_ROOT", VAR_DIR / "uploads"))
# One request of the chunked upload: at most this many bytes and this many file pieces, so
# Django's own limits (DATA_UPLOAD_MAX_MEMORY_SIZE, DATA_UPLOAD_MAX_NUMBER_FILES) stay as they are:
# a chunk is a raw body streamed to disk, never parsed as a form.
VBQ_UPLOAD_CHUNK_BYTES = 8 * 1024 * 1024
VBQ_UPLOAD_CHUNK_PIECES = 100
# Overrides of IngestLimits (studies.ingest; files per upload, bytes per file and per upload, zip
# ratio, pixel bytes ...); the defaults fit MR case sets with a wide margin.
VBQ_INGEST_LIMITS: dict[str, float] = {}
# The DICOM receiver (manage.py dicom_receiver, studies.receiver): the address it listens on,
# and the host name managers are told to configure in their PACS (with the study's AE title).
VBQ_DICOM_BIND = os.environ.get("VBQ_DICOM_BIND", "127.0.0.1")
VBQ_DICOM_PORT = int(os.environ.get("VBQ_DICOM_PORT", "11112"))
VBQ_DICOM_HOST = os.environ.get("VBQ_DICOM_HOST", "")

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

# A score poll sent with ?wait=1 waits on the server up to this long for the worker's result
# (vbqweb.notify), with at most VBQ_SCORE_WAITERS threads of a web process waiting at once
# (default: half of gunicorn's VBQ_WEB_THREADS, so waiters never hold every thread).
VBQ_SCORE_WAIT_SECONDS = float(os.environ.get("VBQ_SCORE_WAIT_SECONDS", "5"))
VBQ_SCORE_WAITERS = int(os.environ.get("VBQ_SCORE_WAITERS", str(max(1, WEB_THREADS // 2))))

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

# --- Reading revisions (issue 12; docs/audit.md) -------------------------------------------------
# The viewer autosaves every change: a save within this many seconds of the reading's latest
# revision, in the same phase (before or after submission), replaces that revision instead of
# adding one. The set as submitted is always kept (readers.services._revision_keep).
VBQ_REVISION_COALESCE_SECONDS = float(os.environ.get("VBQ_REVISION_COALESCE_SECONDS", "600"))
