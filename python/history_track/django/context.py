"""Context for Django: the one place the Django integration attaches context.

``context(**metadata)`` (a context manager and a decorator) pushes metadata
on a stack held in a :class:`contextvars.ContextVar`, so it follows the code
that runs inside it (threads and asyncio tasks see their own). A wrapper
installed on every PostgreSQL connection (``connection.execute_wrappers``)
carries the merged metadata to the writes:

* In a transaction (``atomic()``, ``ATOMIC_REQUESTS``): once, before the
  transaction's first statement, ``SELECT set_history_context(...)`` — the
  setting is transaction-local, so every write of the transaction carries it.
  A block entered while a transaction is already open merges its metadata at
  once, and leaving it restores the outer blocks' metadata.
* In autocommit mode (Django's default), every statement is its own
  transaction, so a statement other than a plain ``SELECT`` is run as
  ``BEGIN; SELECT set_history_context(...); <statement>; COMMIT`` — the
  setting and the write travel in one transaction, which is why this is safe
  behind a transaction pooler (PgBouncer ``pool_mode = transaction``): nothing
  is ever set for the session. A ``SELECT`` that writes through a function
  call is not wrapped in autocommit mode; run it inside ``atomic()``.

Nested blocks merge, inner keys win, as ``set_history_context()`` does.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from psycopg.pq import TransactionStatus

F = TypeVar("F", bound=Callable[..., Any])

_MERGE = "SELECT set_history_context(%s::jsonb)"
_REPLACE = "SELECT set_config('history_track.context', %s, true)"
_READ = re.compile(r"\s*select\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Frame:
    merged: str  # JSON: this frame's metadata over the outer frames'
    own: str  # JSON: this frame's metadata alone


_stack: contextvars.ContextVar[tuple[_Frame, ...]] = contextvars.ContextVar("history_track_context", default=())


def current_context() -> dict[str, Any] | None:
    """The metadata the active ``context()`` blocks attach (merged), or None."""
    stack = _stack.get()
    return json.loads(stack[-1].merged) if stack else None


def _wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    stack = _stack.get()
    if not stack:
        return execute(sql, params, many, context)
    raw = context["connection"].connection  # the psycopg connection
    if raw.autocommit:
        if _READ.match(sql):
            return execute(sql, params, many, context)
        with raw.transaction():
            raw.execute(_MERGE, [stack[-1].merged])
            return execute(sql, params, many, context)
    if raw.info.transaction_status == TransactionStatus.IDLE:
        # This statement opens a transaction: the context goes first.
        raw.execute(_MERGE, [stack[-1].merged])
    return execute(sql, params, many, context)


def install_wrapper(sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
    """Add the context wrapper to a Django connection (idempotent). Connected
    to ``connection_created`` by the app; ``context()`` also calls it."""
    if connection is None or connection.vendor != "postgresql":
        return
    if _wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _wrapper)


def _open_transactions() -> list[Any]:
    """This thread's PostgreSQL connections that are inside a transaction."""
    out = []
    for db in connections.all():
        install_wrapper(connection=db)
        raw = db.connection
        if (db.vendor == "postgresql" and raw is not None and not raw.autocommit
                and raw.info.transaction_status == TransactionStatus.INTRANS):
            out.append(db)
    return out


class context:  # noqa: N801 - used like a function
    """Attach ``metadata`` to every write made inside the block (see the module doc)."""

    def __init__(self, *, encoder: type[json.JSONEncoder] = DjangoJSONEncoder, **metadata: Any) -> None:
        self.metadata = metadata
        self.encoder = encoder
        self._tokens: list[contextvars.Token[tuple[_Frame, ...]]] = []

    def __enter__(self) -> context:
        stack = _stack.get()
        outer = json.loads(stack[-1].merged) if stack else {}
        frame = _Frame(
            merged=json.dumps({**outer, **self.metadata}, cls=self.encoder),
            own=json.dumps(self.metadata, cls=self.encoder),
        )
        for db in _open_transactions():
            db.connection.execute(_MERGE, [frame.own])
        self._tokens.append(_stack.set(stack + (frame,)))
        return self

    def __exit__(self, *exc: Any) -> None:
        token = self._tokens.pop()
        _stack.reset(token)
        stack = _stack.get()
        # Still inside a transaction: back to the outer blocks' metadata.
        for db in _open_transactions():
            db.connection.execute(_REPLACE, [stack[-1].merged if stack else ""])

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with context(encoder=self.encoder, **self.metadata):
                    return await func(*args, **kwargs)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with context(encoder=self.encoder, **self.metadata):
                return func(*args, **kwargs)
        return wrapper  # type: ignore[return-value]


__all__ = ["context", "current_context", "install_wrapper"]
