"""Settings of the benchmark's Django project (bench/bench.py configures
Django with settings_for(...) in its own process)."""

from __future__ import annotations

from typing import Any

# Middleware chains of the end-to-end case: each variant's test client loads
# its own, so a request pays for its own variant's context and nothing else.
MIDDLEWARE = {
    "plain": [],
    "pghistory": ["pghistory.middleware.HistoryMiddleware"],
    "ours": ["history_track.django.middleware.HistoryContextMiddleware"],
}


def settings_for(host: str, port: int, user: str, name: str) -> dict[str, Any]:
    return {
        "DEBUG": False,
        "SECRET_KEY": "bench",
        "ALLOWED_HOSTS": ["testserver"],
        "USE_TZ": True,
        "ROOT_URLCONF": "benchapp.urls",
        "INSTALLED_APPS": [
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "pgtrigger",
            "pghistory",
            "history_track.django",
            "benchapp",
        ],
        "MIDDLEWARE": [],
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "HOST": host,
                "PORT": port,
                "USER": user,
                "NAME": name,
            }
        },
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "LOGGING_CONFIG": None,
    }
