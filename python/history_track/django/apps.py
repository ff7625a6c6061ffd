"""The Django app: hooks the context wrapper into every database connection."""

from __future__ import annotations

from django.apps import AppConfig


class HistoryTrackConfig(AppConfig):
    name = "history_track.django"
    label = "history_track"
    verbose_name = "history_track"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from .autodetector import install as install_autodetector
        from .context import install_wrapper

        # makemigrations/migrate write and check the tracking @track() declares.
        install_autodetector()

        # Every connection Django opens (in any thread) gets the wrapper that
        # attaches the current context to its writes; it does nothing while no
        # context is active.
        connection_created.connect(install_wrapper, dispatch_uid="history_track.install_wrapper")
