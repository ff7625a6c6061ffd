"""Celery: a task runs in the context of the code that enqueued it.

Call :func:`connect` once where the Celery app is made (``proj/celery.py``)::

    app = Celery("proj")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    history_track.django.celery.connect()

Then a task sent inside a context block — a request through the middleware,
``with history_track.django.context(...)``, another task — carries that
block's metadata (deferred values, such as the request's user, computed when
it is sent) in a message header, ``history_track_context``; the worker runs
the task inside a block with that metadata plus ``{"task": <task name>,
"task_id": <id>}``, so every write the task makes records who asked for it and
which task did it. A task sent outside any block runs with the task keys
alone. Nothing is read from or written to the database to carry it, and it
works with any broker and pool. Eager tasks (``task_always_eager``) run in the
sender's block already and get the task keys on top.

The same three steps carry the context through any job queue: read
``history_track.django.current_context()`` when the job is enqueued, store it
with the job, and run the job inside ``history_track.django.context(**stored,
job=...)`` (doc/django.md has recipes for RQ and Django's tasks).
"""

from __future__ import annotations

import json
from typing import Any

from .context import _payload, _stack, context

HEADER = "history_track_context"
_running: dict[str, context] = {}  # task id -> its block, between task_prerun and task_postrun


def _on_publish(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    stack = _stack.get()
    if stack and headers is not None:
        headers[HEADER] = _payload(stack)


def _on_prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task is None or task_id is None:
        return
    carried = getattr(task.request, HEADER, None)
    metadata = json.loads(carried) if isinstance(carried, str) and carried else {}
    block = context(**{**metadata, "task": task.name, "task_id": task_id})
    block.__enter__()
    _running[task_id] = block


def _on_postrun(task_id: str | None = None, **kwargs: Any) -> None:
    block = _running.pop(task_id, None) if task_id is not None else None
    if block is not None:
        block.__exit__(None, None, None)


def connect() -> None:
    """Carry the context into every Celery task (idempotent)."""
    from celery import signals

    signals.before_task_publish.connect(_on_publish, dispatch_uid="history_track.celery.publish", weak=False)
    signals.task_prerun.connect(_on_prerun, dispatch_uid="history_track.celery.prerun", weak=False)
    signals.task_postrun.connect(_on_postrun, dispatch_uid="history_track.celery.postrun", weak=False)


__all__ = ["HEADER", "connect"]
