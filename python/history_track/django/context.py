"""Context for Django: the one place the Django integration attaches context.

``context(**metadata)`` (a context manager and a decorator) pushes metadata
on a stack held in a :class:`contextvars.ContextVar`, so it follows the code
that runs inside it (threads, asyncio tasks and ``sync_to_async`` calls see
their caller's). Called plainly, not as a block, ``context(step="x")`` adds
its keys to the innermost open block for the rest of that block.

A wrapper installed on every PostgreSQL connection
(``connection.execute_wrappers``) carries the merged metadata to the writes.
Before a statement runs, it compares the metadata the blocks give now with
what it last set in the connection's current transaction; when they differ
(a new transaction, a block entered or left, a savepoint rolled back, a
value that changed) the statement is sent as::

    SELECT pg_catalog.set_config('history_track.context', '<json>', true); <statement>

one query string, one round trip. PostgreSQL runs the statements of one
query string as one transaction when no transaction is open (Django's
autocommit mode), so the transaction-local setting and the write travel
together — which is why this is safe behind a transaction pooler: nothing is
ever set for the session. Inside a transaction the setting lasts until its
end or until a savepoint that saw it is rolled back, and the wrapper sends it
again when that happens. The metadata is a dollar-quoted literal, never
SQL text a value could end. Where one query string cannot carry two
statements (psycopg 3's ``server_side_binding``, ``executemany``) the setting
goes first on its own: one extra round trip, in a transaction opened for the
statement in autocommit mode.

A value that is callable is called when a statement is sent, so the
middleware records the user a view authenticated (Django REST framework sets
``request.user`` inside the view), not the one known when the request began.

Works with both of Django's PostgreSQL drivers, psycopg 3 and psycopg2.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from django.core.serializers.json import DjangoJSONEncoder

F = TypeVar("F", bound=Callable[..., Any])

# libpq's PGTransactionStatusType, as both drivers report it (connection.info.transaction_status).
_IDLE, _INTRANS, _INERROR = 0, 2, 3

_SET = "SELECT pg_catalog.set_config('history_track.context', {}, true); "
_SET_ALONE = "SELECT pg_catalog.set_config('history_track.context', %s, true)"
# Statements PostgreSQL refuses to run in a transaction block, which a second
# statement in the same query string would make: they are sent as they are.
_NO_BLOCK = re.compile(
    r"\s*(vacuum|reindex|cluster|checkpoint|alter\s+system|(create|drop)\s+(database|tablespace|subscription)"
    r"|alter\s+subscription|create\s+(unique\s+)?index\s+concurrently|drop\s+index\s+concurrently"
    r"|alter\s+table\b.*\bdetach\s+partition\b.*\bconcurrently|begin|start\s+transaction|commit|end\b"
    r"|rollback|abort|prepare\s+transaction|savepoint|release)\b",
    re.IGNORECASE | re.DOTALL,
)
# After these the setting may be gone (ROLLBACK [TO SAVEPOINT]) or the transaction over.
_RESETS = re.compile(r"\s*(rollback|abort|commit|end)\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Frame:
    """The metadata of a block merged over its outer blocks', encoded where it
    can be now (an unencodable value fails when the block is made)."""
    fixed: dict[str, str]  # key -> JSON text of the value
    deferred: dict[str, tuple[Callable[[], Any], type[json.JSONEncoder]]]  # called when a statement is sent
    text: str | None  # the JSON object, when nothing is deferred

    @staticmethod
    def of(metadata: dict[str, Any], encoder: type[json.JSONEncoder], outer: _Frame | None = None) -> _Frame:
        fixed = {} if outer is None else {k: v for k, v in outer.fixed.items() if k not in metadata}
        deferred = {} if outer is None else {k: v for k, v in outer.deferred.items() if k not in metadata}
        for key, value in metadata.items():
            if callable(value):
                deferred[key] = (value, encoder)
            else:
                fixed[key] = json.dumps(value, cls=encoder)
        return _Frame(fixed, deferred, None if deferred else _object(fixed))

    def payload(self) -> str:
        """The JSON object the blocks give now: deferred values are called."""
        if self.text is not None:
            return self.text
        items = dict(self.fixed)
        token = _resolving.set(True)
        try:
            for key, (get, encoder) in self.deferred.items():
                items[key] = json.dumps(get(), cls=encoder)
        finally:
            _resolving.reset(token)
        return _object(items)


def _object(items: dict[str, str]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in items.items()) + "}"


_stack: contextvars.ContextVar[tuple[_Frame, ...]] = contextvars.ContextVar("history_track_context", default=())
# Set while deferred values are computed: a query they make (request.user
# loading the user) is sent as it is.
_resolving: contextvars.ContextVar[bool] = contextvars.ContextVar("history_track_resolving", default=False)


def _payload(stack: tuple[_Frame, ...]) -> str:
    """The JSON object the open blocks give now ('' when none is open)."""
    return stack[-1].payload() if stack else ""


def current_context() -> dict[str, Any] | None:
    """The metadata the active ``context()`` blocks attach (merged, deferred
    values computed now), or None."""
    stack = _stack.get()
    return json.loads(_payload(stack)) if stack else None


def _literal(text: str) -> str:
    """text as a dollar-quoted SQL literal (no escapes to get wrong, whatever
    standard_conforming_strings says)."""
    tag, n = "$htc$", 0
    while (text + tag).find(tag) != len(text):   # the first closing tag PostgreSQL finds must be ours
        n += 1
        tag = f"$htc{n}$"
    return f"{tag}{text}{tag}"


def _one_string_carries_two(cursor: Any, many: bool) -> bool:
    """Whether a prefix statement can share the query string: a client-side
    binding cursor sent with the simple query protocol (psycopg2 always;
    psycopg 3's ClientCursor, Django's default), not a named cursor."""
    if many or getattr(cursor, "name", None):
        return False
    raw = getattr(cursor, "cursor", cursor)   # Django's CursorWrapper holds the driver's cursor
    module = type(raw).__module__
    if module.startswith("psycopg2"):
        return True
    import psycopg
    return isinstance(raw, psycopg.ClientCursor) and not raw.connection.pgconn.pipeline_status


def _wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    db = context["connection"]
    if _resolving.get():
        return execute(sql, params, many, context)
    want = _payload(_stack.get())   # first: a deferred value may run a query
    raw = db.connection   # the driver's connection
    status = raw.info.transaction_status
    if status == _IDLE:
        db.history_track_sent = ""   # a new transaction: nothing set in it yet
    elif status == _INERROR:
        return execute(sql, params, many, context)
    sent = getattr(db, "history_track_sent", "")
    if want == sent or not isinstance(sql, str) or _NO_BLOCK.match(sql):
        result = execute(sql, params, many, context)
    elif _one_string_carries_two(context["cursor"], many):
        prefix = _SET.format(_literal(want))
        if params is not None:   # the driver reads % in the text as placeholders
            prefix = prefix.replace("%", "%%")
        try:
            result = execute(prefix + sql, params, many, context)
        except Exception as exc:
            if not (status == _IDLE and raw.autocommit and _commits_in_a_procedure(exc)):
                raise
            # CALL of a procedure that commits: PostgreSQL refuses its COMMIT in a
            # query string of two statements, and nothing of it was kept. A
            # transaction-local setting cannot outlive a commit: it runs alone.
            warnings.warn(f"history_track: {sql.strip()[:60]!r} commits inside a procedure, so its writes"
                          " carry no context; call it inside atomic() to give them the context",
                          RuntimeWarning, stacklevel=2)
            return execute(sql, params, many, context)
        _skip_the_setting(context["cursor"])
        db.history_track_sent = want if status != _IDLE or not raw.autocommit else ""
    elif status == _IDLE and raw.autocommit:
        # One transaction for the setting and the statement.
        with raw.cursor() as cur:
            cur.execute("BEGIN")
            try:
                cur.execute(_SET_ALONE, [want])
                result = execute(sql, params, many, context)
            except BaseException:
                if raw.info.transaction_status in (_INTRANS, _INERROR):
                    cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")
    else:
        with raw.cursor() as cur:
            cur.execute(_SET_ALONE, [want])
        db.history_track_sent = want
        result = execute(sql, params, many, context)
    if _RESETS.match(sql if isinstance(sql, str) else ""):
        db.history_track_sent = ""   # ROLLBACK TO SAVEPOINT may have undone the setting
    return result


def _commits_in_a_procedure(exc: BaseException) -> bool:
    """Whether the driver's error (Django's __cause__) is 2D000, invalid
    transaction termination: psycopg 3 names its code sqlstate, psycopg2 pgcode."""
    cause = exc.__cause__
    return (getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)) == "2D000"


def _skip_the_setting(cursor: Any) -> None:
    """psycopg 3 stands on the first result of a query string, the setting's:
    step to the caller's statement (psycopg2 keeps only the last result, which
    is the caller's)."""
    raw = getattr(cursor, "cursor", cursor)
    if not type(raw).__module__.startswith("psycopg2"):
        raw.nextset()


def install_wrapper(sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
    """Add the context wrapper to a Django connection (idempotent). Connected
    to ``connection_created`` by the app; ``context()`` also calls it."""
    if connection is None or connection.vendor != "postgresql":
        return
    if _wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _wrapper)


def _install_everywhere() -> None:
    from django.db import connections
    for db in connections.all(initialized_only=True):
        install_wrapper(connection=db)


class context:  # noqa: N801 - used like a function
    """Attach ``metadata`` to every write made inside the block (see the module doc).

    As a plain call, ``context(step="x")`` adds its keys to the innermost open
    block until that block ends; with no block open that would attach them to
    nothing, so it warns (RuntimeWarning) when the unused object goes away.
    """

    def __init__(self, *, encoder: type[json.JSONEncoder] = DjangoJSONEncoder, **metadata: Any) -> None:
        self.metadata = metadata
        self.encoder = encoder
        self._tokens: list[contextvars.Token[tuple[_Frame, ...]]] = []
        stack = _stack.get()
        frame = _Frame.of(metadata, encoder, stack[-1] if stack else None)   # fails here if a value cannot be encoded
        self._used = False
        # A plain call adds to the innermost block at once; entering or
        # decorating takes the addition back and makes a block of its own.
        self._added: contextvars.Token[tuple[_Frame, ...]] | None = (
            _stack.set(stack[:-1] + (frame,)) if stack else None)

    def _take_back(self) -> None:
        self._used = True
        if self._added is not None:
            token, self._added = self._added, None
            try:
                _stack.reset(token)
            except ValueError:   # made in another context: nothing of it is in this one
                pass

    def __enter__(self) -> context:
        self._take_back()
        _install_everywhere()
        stack = _stack.get()
        self._tokens.append(_stack.set(stack + (_Frame.of(self.metadata, self.encoder, stack[-1] if stack else None),)))
        return self

    def __exit__(self, *exc: Any) -> None:
        _stack.reset(self._tokens.pop())

    def __call__(self, func: F) -> F:
        self._take_back()
        encoder, metadata = self.encoder, self.metadata
        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with context(encoder=encoder, **metadata):
                    return await func(*args, **kwargs)
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with context(encoder=encoder, **metadata):
                return func(*args, **kwargs)
        return wrapper  # type: ignore[return-value]

    def __del__(self) -> None:
        if not getattr(self, "_used", True) and getattr(self, "_added", None) is None:
            warnings.warn(
                f"history_track.django.context({', '.join(self.metadata)}) was called outside any context block"
                " and never entered: its metadata reaches no write. Use it as 'with context(...):' or a"
                " decorator, or call it inside a block (the middleware's request, a task) to add keys to it.",
                RuntimeWarning, stacklevel=2)


__all__ = ["context", "current_context", "install_wrapper"]
