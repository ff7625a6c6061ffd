"""Django integration (``pip install 'history-track[django]'``).

Put ``"history_track.django"`` in ``INSTALLED_APPS`` and
``"history_track.django.middleware.HistoryContextMiddleware"`` in
``MIDDLEWARE`` (after the authentication middleware); then:

* every write a request makes carries ``{"user", "url", "method"}`` as context;
* ``with history_track.django.context(job="nightly-import"):`` (also a
  decorator) does the same for management commands, tasks and scripts;
* ``@history_track.django.track()`` on a model declares its tracking;
  ``makemigrations`` writes the ``TrackModel``/``UntrackModel`` operations
  (``history_track.django.operations``, which migrations may also use by hand);
* ``events(order)`` / ``events(Order)`` read history, ``as_of(Order, ts)``
  gives model instances as they were, ``revert(order, ts)`` restores one.
* ``history_track.django.models``: each tracked model's event model
  (``OrderEvent.objects.filter(status="paid")``, ``order.events``; made by
  ``track()`` or ``event_model()``) and ``Events``, every model's events with
  data, diff and context (``Events.objects.tracks(order)``).

Nothing in the core ``history_track`` package imports Django. This package
supports Django's psycopg 3 backend (``django.db.backends.postgresql`` with
psycopg 3 installed). See doc/django.md.
"""

from __future__ import annotations

from .api import as_of, events, record, revert
from .conditions import Changed
from .context import acurrent_context, context, current_context
from .tracking import Tracker, track, tracked_models, trackers_of

__all__ = [
    "Changed",
    "Tracker",
    "acurrent_context",
    "as_of",
    "context",
    "current_context",
    "events",
    "record",
    "revert",
    "track",
    "tracked_models",
    "trackers_of",
]
