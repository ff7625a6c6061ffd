"""Settings of the test project. tests/test_django.py passes settings_for(...)
to settings.configure(); processes it starts (uvicorn, a Celery worker) use
this module as DJANGO_SETTINGS_MODULE, the database named in the environment
(HISTORY_TRACK_TEST_DB: a JSON object of host, port, user, name)."""

from __future__ import annotations

import json
import os
from typing import Any


def use_psycopg2() -> None:
    """Make Django's backend choose psycopg2 although psycopg 3 is installed
    (the test process keeps using psycopg 3 for its own connections)."""
    import sys
    real = sys.modules.get("psycopg")
    sys.modules["psycopg"] = None  # type: ignore[assignment]   # import psycopg raises ImportError
    try:
        import django.db.backends.postgresql.base  # noqa: F401
        import django.db.backends.postgresql.psycopg_any as any_
    finally:
        if real is None:
            del sys.modules["psycopg"]
        else:
            sys.modules["psycopg"] = real
    assert not any_.is_psycopg3


# Which of Django's PostgreSQL drivers the project runs on: psycopg 3, or
# psycopg2 when HISTORY_TRACK_TEST_DJANGO_DRIVER says so (test_django_on_psycopg2).
if os.environ.get("HISTORY_TRACK_TEST_DJANGO_DRIVER") == "psycopg2":
    use_psycopg2()


def settings_for(host: str, port: str | int, user: str, name: str) -> dict[str, Any]:
    def database(**extra: Any) -> dict[str, Any]:
        return {"ENGINE": "django.db.backends.postgresql", "NAME": name, "HOST": host, "PORT": port,
                "USER": user, **extra}

    return dict(
        DEBUG=os.environ.get("HISTORY_TRACK_TEST_DEBUG") == "1",
        SECRET_KEY="test",
        ALLOWED_HOSTS=["testserver", "127.0.0.1"],
        USE_TZ=True,
        ROOT_URLCONF="shop.urls",
        INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
                        # The admin (tests/test_django_admin.py): its default theme, as shipped.
                        "django.contrib.admin", "django.contrib.messages", "django.contrib.staticfiles",
                        "rest_framework", "history_track.django", "shop"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                    "django.contrib.auth.middleware.AuthenticationMiddleware",
                    "django.contrib.messages.middleware.MessageMiddleware",
                    "history_track.django.middleware.HistoryContextMiddleware"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                    "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                       "django.contrib.auth.context_processors.auth",
                                                       "django.contrib.messages.context_processors.messages"]}}],
        STATIC_URL="/static/",
        DATABASES={"default": database(ATOMIC_REQUESTS=False),
                   # The same databases through PgBouncer (test_behind_a_transaction_pooler).
                   "pooled": database(DISABLE_SERVER_SIDE_CURSORS=True)},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        HISTORY_TRACK_CONTEXT=None,
        # Django REST framework: no authentication of its own unless a view names one.
        REST_FRAMEWORK={"DEFAULT_AUTHENTICATION_CLASSES": [], "DEFAULT_PERMISSION_CLASSES": [],
                        "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser"},
        LOGGING={"version": 1, "disable_existing_loggers": False,
                 "handlers": {"console": {"class": "logging.StreamHandler"}},
                 # "Asynchronous handler adapted for middleware ..." is logged here.
                 "loggers": {"django.request": {"handlers": ["console"], "level": "DEBUG"}}},
    )


if "HISTORY_TRACK_TEST_DB" in os.environ:
    globals().update(settings_for(**json.loads(os.environ["HISTORY_TRACK_TEST_DB"])))
