"""Settings shared by every environment; values come from the environment (django-environ)."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    env.read_env(str(env_file))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
TIME_ZONE = "UTC"
USE_TZ = True
LANGUAGE_CODE = "en-us"
USE_I18N = False

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files (no CDN)
    "accounts",
    "catalog",
    "labeling",
    "mlworker",
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
    "catalog.middleware.ApplicationErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "labeling:projects"
LOGOUT_REDIRECT_URL = "catalog:home"
SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "galaxylab API",
    "DESCRIPTION": "Catalog, votes and fractions of galaxylab.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

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

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


def database_from_url(url: str) -> dict:
    """A DATABASES entry from a URL; SQLite gets WAL and IMMEDIATE transactions so that
    the web server and a worker can write concurrently without "database is locked"."""
    config = environ.Env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        config["OPTIONS"] = {
            # Writers queue on the lock for up to 30 s instead of failing at once.
            "timeout": 30,
            # Take the write lock at BEGIN: a deferred transaction that later upgrades
            # to a writer cannot wait on the busy timeout and fails with "locked".
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    else:
        config.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
        # Server-side parameter binding lets psycopg prepare repeated statements, so the hot
        # queries (next galaxy, vote) are planned once per connection, not once per request.
        config.setdefault("OPTIONS", {})["server_side_binding"] = env.bool("DATABASE_SERVER_SIDE_BINDING", default=True)
        # A health check costs a round trip per request; enable it where connections drop
        # (e.g. behind a pooler that recycles them).
        config.setdefault("CONN_HEALTH_CHECKS", env.bool("DATABASE_CONN_HEALTH_CHECKS", default=False))
    config["ATOMIC_REQUESTS"] = False
    return config


STATIC_URL = "/static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Packed stores (cutout and spectrum shards) are memory-mapped, so they live on a local
# or shared POSIX filesystem, not in object storage.
GALAXYLAB_PACK_ROOT = env.path("GALAXYLAB_PACK_ROOT", default=str(VAR_DIR / "packs"))
# Rendered cutout previews (PNG) are a cache: safe to delete at any time.
GALAXYLAB_RENDER_CACHE = env.path("GALAXYLAB_RENDER_CACHE", default=str(VAR_DIR / "renders"))

CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://galaxylab")}

REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "catalog.api.exceptions.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.authentication.CachedTokenAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.AnonRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"anon": env.str("API_ANON_RATE", default="120/min")},
}

# Celery: the broker comes from the environment; results are not stored (task progress
# lives in database rows that the UI reads).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
# Redis redelivers an unacknowledged message after the visibility timeout: above the longest
# task (6 h training), so that no running task is ever delivered twice by the broker.
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 7 * 3600}
CELERY_BEAT_SCHEDULE_FILENAME = env.str("CELERY_BEAT_SCHEDULE_FILENAME", default=str(VAR_DIR / "celerybeat-schedule"))
# Prediction runs: subjects per chunk, the lease a working chunk renews, and how long a
# queued chunk may wait before the reconciler assumes its message was lost.
GALAXYLAB_PREDICTION_CHUNK = env.int("GALAXYLAB_PREDICTION_CHUNK", default=1000)
GALAXYLAB_PREDICTION_LEASE_SECONDS = env.int("GALAXYLAB_PREDICTION_LEASE_SECONDS", default=60)
GALAXYLAB_PREDICTION_LOST_SECONDS = env.int("GALAXYLAB_PREDICTION_LOST_SECONDS", default=300)
CELERY_TASK_ALWAYS_EAGER = False
# A worker is reported "online" while its heartbeat is younger than this.
GALAXYLAB_WORKER_STALE_SECONDS = env.int("GALAXYLAB_WORKER_STALE_SECONDS", default=30)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
