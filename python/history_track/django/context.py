"""Context for Django: the one place the Django integration attaches context.

``context(**metadata)`` (a context manager and a decorator) pushes metadata
on a stack held in a :class:`contextvars.ContextVar`, so it follows the code
that runs inside it (asyncio tasks and ``sync_to_async`` calls see their
caller's; a thread started by hand starts with none). Called plainly, not as a block, ``context(step="x")`` adds
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
statements (``executemany``, named cursors, parameters under psycopg 3's
``server_side_binding``) the setting goes first on its own: one extra round
trip in a transaction, three in autocommit mode (``BEGIN`` … ``COMMIT``
around it, plain ``SELECT`` s excepted). doc/django.md has the details:
statements sent as they are, procedures that commit, what the wrapper does
not see.

A value that is callable is called when the setting is sent, so the
middleware records the user a view authenticated (Django REST framework sets
``request.user`` inside the view), not the one known when the request began.

Works with both of Django's PostgreSQL drivers, psycopg 3 and psycopg2.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import json
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from asgiref.sync import iscoroutinefunction
from django.core.serializers.json import DjangoJSONEncoder

F = TypeVar("F", bound=Callable[..., Any])

# libpq's PGTransactionStatusType, as both drivers report it (connection.info.transaction_status).
_IDLE, _INTRANS, _INERROR = 0, 2, 3

_SET = "SELECT pg_catalog.set_config('history_track.context', {}, true); "
_SET_ALONE = "SELECT pg_catalog.set_config('history_track.context', %s, true)"
# How much of a statement's text is read to tell what it is.
_HEAD = 400
# Statements sent as they are (matched on the head, comments removed): those
# PostgreSQL refuses to run in a transaction block (which a second statement
# in the query string would make), transaction control, and those that must
# come first in a transaction.
_AS_IS = re.compile(
    r"(vacuum|reindex|cluster|checkpoint|discard|alter\s+system|(create|drop)\s+(database|tablespace|subscription)"
    r"|alter\s+subscription|create\s+(unique\s+)?index\s+concurrently|drop\s+index\s+concurrently"
    r"|begin|start\s+transaction|commit|end|rollback|abort|prepare\s+transaction|savepoint|release"
    r"|set\s+transaction|set\s+session\s+characteristics"
    r"|set\s+(session\s+|local\s+)?(transaction_isolation|transaction_read_only|transaction_deferrable))\b",
    re.IGNORECASE,
)
# ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY and ALTER DATABASE ... SET
# TABLESPACE: their telling words are further on (each looked for on its own:
# linear in the statement's length).
_ALTER_TABLE = re.compile(r"alter\s+table\b", re.IGNORECASE)
_DETACH = re.compile(r"\bdetach\s+partition\b", re.IGNORECASE)
_CONCURRENTLY = re.compile(r"\bconcurrently\s*;?\s*$", re.IGNORECASE)
_ALTER_DATABASE = re.compile(r"alter\s+database\b", re.IGNORECASE)
_SET_TABLESPACE = re.compile(r"\bset\s+tablespace\b", re.IGNORECASE)
# After these the setting may be gone (ROLLBACK [TO SAVEPOINT]) or the transaction over.
_RESETS = re.compile(r"(rollback|abort|commit|end)\b", re.IGNORECASE)
_READ = re.compile(r"select\b", re.IGNORECASE)


def _head(text: str) -> str:
    """The first _HEAD characters of a statement without its comments (they
    nest in PostgreSQL) and without leading white space and semicolons: ''
    for a statement of nothing else."""
    chunk = text[:_HEAD]
    if "/*" not in chunk and "--" not in chunk:  # (most statements: no scan needed)
        return chunk.lstrip(" \t\r\n;")
    out, i, depth, n = [], 0, 0, min(len(text), _HEAD)
    while i < n:
        if depth:
            if text.startswith("*/", i):
                depth, i = depth - 1, i + 2
            elif text.startswith("/*", i):
                depth, i = depth + 1, i + 2
            else:
                i += 1
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            out.append(" ")
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        else:
            out.append(text[i])
            i += 1
    return "".join(out).lstrip(" \t\r\n;")


def _as_is(head: str, text: str) -> bool:
    """Whether the statement goes out as it is (_AS_IS, and nothing but comments)."""
    if not head or _AS_IS.match(head):
        return True
    if _ALTER_TABLE.match(head):
        return bool(_CONCURRENTLY.search(text) and _DETACH.search(text))
    return bool(_ALTER_DATABASE.match(head) and _SET_TABLESPACE.search(text))


@dataclass(frozen=True)
class _Layer:
    """What one context() call gives: its keys, encoded where they can be now."""

    owner: int  # the call's serial number
    fixed: dict[str, str]  # key -> JSON text of the value
    deferred: dict[str, tuple[Callable[[], Any], type[json.JSONEncoder]]]  # called when a statement is sent

    @staticmethod
    def of(owner: int, metadata: dict[str, Any], encoder: type[json.JSONEncoder]) -> _Layer:
        fixed, deferred = {}, {}
        for key, value in metadata.items():
            if callable(value):
                deferred[key] = (value, encoder)
            else:  # fails here when a value cannot be encoded (NaN included: it is not JSON)
                fixed[key] = json.dumps(value, cls=encoder, allow_nan=False)
        return _Layer(owner, fixed, deferred)


@dataclass(frozen=True)
class _Frame:
    """A block: the layers of the block (its own, then plain calls inside it),
    merged over the outer block's frame."""

    owner: int  # the serial of the context() call that opened the block
    chain: tuple[_Layer, Any] | None  # its layers, newest first: (layer, older chain)
    fixed: dict[str, str]
    deferred: dict[str, tuple[Callable[[], Any], type[json.JSONEncoder]]]
    text: str | None  # the JSON object, when nothing is deferred

    @staticmethod
    def make(
        owner: int,
        chain: tuple[_Layer, Any] | None,
        fixed: dict[str, str],
        deferred: dict[str, tuple[Callable[[], Any], type[json.JSONEncoder]]],
    ) -> _Frame:
        return _Frame(owner, chain, fixed, deferred, None if deferred else _object(fixed))

    @staticmethod
    def of(owner: int, layers: Sequence[_Layer], outer: _Frame | None) -> _Frame:
        frame = _Frame.make(owner, None, dict(outer.fixed) if outer else {}, dict(outer.deferred) if outer else {})
        for layer in layers:
            frame = frame.plus(layer)
        return frame

    def plus(self, layer: _Layer) -> _Frame:
        """This block with one more layer: merged in alone, so a plain call costs
        the same however many came before it."""
        fixed = {k: v for k, v in self.fixed.items() if k not in layer.deferred}
        fixed.update(layer.fixed)
        deferred = {k: v for k, v in self.deferred.items() if k not in layer.fixed}
        deferred.update(layer.deferred)
        return _Frame.make(self.owner, (layer, self.chain), fixed, deferred)

    def layers(self) -> list[_Layer]:
        """The block's layers, oldest first."""
        out, node = [], self.chain
        while node is not None:
            out.append(node[0])
            node = node[1]
        return out[::-1]

    def payload(self) -> str:
        """The JSON object the blocks give now: deferred values are called."""
        if self.text is not None:
            return self.text
        items = dict(self.fixed)
        token = _resolving.set(True)
        try:
            for key, (get, encoder) in self.deferred.items():
                items[key] = json.dumps(get(), cls=encoder, allow_nan=False)
        finally:
            _resolving.reset(token)
        return _object(items)


def _object(items: dict[str, str]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in items.items()) + "}"


_stack: contextvars.ContextVar[tuple[_Frame, ...]] = contextvars.ContextVar("history_track_context", default=())
# Set while deferred values are computed: a query they make (request.user
# loading the user) is sent as it is.
_resolving: contextvars.ContextVar[bool] = contextvars.ContextVar("history_track_resolving", default=False)
_serials = itertools.count(1)


def _payload(stack: tuple[_Frame, ...]) -> str:
    """The JSON object the open blocks give now ('' when none is open)."""
    return stack[-1].payload() if stack else ""


def _without(stack: tuple[_Frame, ...], owner: int) -> tuple[_Frame, ...]:
    """stack without the layer of owner's plain call, wherever it is: the block
    that holds it and every block inside that one are merged again."""
    for i in range(len(stack) - 1, -1, -1):
        if any(layer.owner == owner for layer in stack[i].layers()):
            out = list(stack[:i])
            for frame in stack[i:]:
                layers = [layer for layer in frame.layers() if layer.owner != owner]
                out.append(_Frame.of(frame.owner, layers, out[-1] if out else None))
            return tuple(out)
    return stack


def current_context() -> dict[str, Any] | None:
    """The metadata the active ``context()`` blocks attach (merged, deferred
    values computed now), or None."""
    stack = _stack.get()
    return json.loads(_payload(stack)) if stack else None


async def acurrent_context() -> dict[str, Any] | None:
    """current_context() for async code: a deferred value that can load itself
    where the event loop may await (the middleware's user: ``aload()``) is
    loaded first, so it is known where no query can run."""
    stack = _stack.get()
    if stack:
        for get, _ in stack[-1].deferred.values():
            aload = getattr(get, "aload", None)
            if aload is not None:
                await aload()
    return current_context()


def _literal(text: str) -> str:
    """text as a dollar-quoted SQL literal (no escapes to get wrong, whatever
    standard_conforming_strings says)."""
    tag, n = "$htc$", 0
    while (text + tag).find(tag) != len(text):  # the first closing tag PostgreSQL finds must be ours
        n += 1
        tag = f"$htc{n}$"
    return f"{tag}{text}{tag}"


def _driver_cursor(cursor: Any) -> Any:
    return getattr(cursor, "cursor", cursor)  # Django's CursorWrapper holds the driver's cursor


@functools.cache
def _psycopg2_cursor() -> type | None:
    """psycopg2's cursor class, or None without psycopg2: looked up once (an
    import that fails is not remembered by Python, and searching the path for it
    again cost each statement half a millisecond)."""
    try:
        import psycopg2.extensions
    except ImportError:
        return None
    cursor: type = psycopg2.extensions.cursor
    return cursor


def _is_psycopg2(raw: Any) -> bool:
    cursor = _psycopg2_cursor()
    return cursor is not None and isinstance(raw, cursor)


def _one_string_carries_two(cursor: Any, many: bool, params: Any) -> bool:
    """Whether a prefix statement can share the query string: it must be sent
    with the simple query protocol — psycopg2 always; psycopg 3's ClientCursor
    (Django's default) outside pipeline mode, and any psycopg 3 cursor given no
    parameters — and not by a named cursor or executemany."""
    if many or getattr(cursor, "name", None):
        return False
    raw = _driver_cursor(cursor)
    if _is_psycopg2(raw):
        return True
    try:
        import psycopg
    except ImportError:  # neither driver's cursor: the setting goes alone
        return False
    if not isinstance(raw, psycopg.Cursor) or raw.connection.pgconn.pipeline_status:
        return False
    # A server-side binding cursor sends a statement without parameters by the
    # simple protocol too, unless it prepares it (prepare_threshold).
    return isinstance(raw, psycopg.ClientCursor) or (params is None and raw.connection.prepare_threshold is None)


def _as_text(sql: Any, cursor: Any) -> str | None:
    """The statement as text: Django passes str; psycopg's sql.Composable and bytes
    are turned into it (None: something else, sent as it is)."""
    if isinstance(sql, str):
        return sql
    if isinstance(sql, bytes):
        return sql.decode()
    if hasattr(sql, "as_string"):
        return str(sql.as_string(_driver_cursor(cursor)))
    return None


def _wrapper(execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
    db = context["connection"]
    if _resolving.get() or not (_stack.get() or bool(getattr(db, "history_track_sent", ""))):
        return execute(sql, params, many, context)  # no block open and nothing set: nothing to do
    text = _as_text(sql, context["cursor"])
    if text is None:
        return execute(sql, params, many, context)
    head = _head(text)
    if _as_is(head, text):
        try:
            return execute(sql, params, many, context)
        finally:
            if _RESETS.match(head):  # also when it failed: the transaction may be over
                db.history_track_sent = ""
    raw = db.connection  # the driver's connection
    status = raw.info.transaction_status
    if status == _IDLE:
        db.history_track_sent = ""  # a new transaction: nothing set in it yet
    elif status == _INERROR:
        return execute(sql, params, many, context)  # fails anyway; a deferred value must not run here
    want = _payload(_stack.get())
    if want == getattr(db, "history_track_sent", ""):
        return execute(sql, params, many, context)
    autocommit = status == _IDLE and raw.autocommit
    if _one_string_carries_two(context["cursor"], many, params):
        prefix = _SET.format(_literal(want))
        if params is not None:  # the driver reads % in the text as placeholders
            prefix = prefix.replace("%", "%%")
        try:
            result = execute(prefix + text, params, many, context)
        except Exception as exc:
            if not (autocommit and _commits_in_a_procedure(exc)):
                raise
            return _alone(execute, sql, params, many, context)
        if not _is_psycopg2(_driver_cursor(context["cursor"])):
            _driver_cursor(context["cursor"]).nextset()  # psycopg 3 stands on the setting's result
        db.history_track_sent = "" if autocommit else want
        return result
    if autocommit:
        if _READ.match(head) and not many:
            return execute(sql, params, many, context)  # a read does not pay three round trips
        with raw.cursor() as cur:  # one transaction for the setting and the statement
            cur.execute("BEGIN")
            try:
                cur.execute(_SET_ALONE, [want])
                result = execute(sql, params, many, context)
            except BaseException as exc:  # also an interruption: no transaction stays open in autocommit mode
                if raw.info.transaction_status in (_INTRANS, _INERROR):
                    cur.execute("ROLLBACK")
                if isinstance(exc, Exception) and _commits_in_a_procedure(exc):
                    return _alone(execute, sql, params, many, context)
                raise
            cur.execute("COMMIT")
        return result
    with raw.cursor() as cur:
        cur.execute(_SET_ALONE, [want])
    db.history_track_sent = want
    return execute(sql, params, many, context)


def _commits_in_a_procedure(exc: BaseException) -> bool:
    """Whether the driver's error (Django's __cause__) is 2D000, invalid
    transaction termination: psycopg 3 names its code sqlstate, psycopg2 pgcode."""
    cause = exc.__cause__
    return (getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)) == "2D000"


def _alone(execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """CALL of a procedure that commits, in autocommit mode: PostgreSQL refused
    its COMMIT with the setting in the same transaction and kept nothing of it.
    A transaction-local setting cannot outlive a commit, so it runs alone."""
    warnings.warn(
        "history_track: a procedure that commits ran without the context (its writes carry none)"
        " and was run twice, the first run rolled back (its sequences moved twice); call it inside"
        " atomic(), where it cannot commit, to give its writes the context",
        RuntimeWarning,
        stacklevel=3,
    )
    return execute(sql, params, many, context)


def _forget_on_transaction_end(connection: Any) -> None:
    """Make the connection forget what it set when Django ends a transaction or
    the connection, also when the next transaction is opened by a statement the
    wrapper does not see (a health check's SELECT 1 with AUTOCOMMIT off)."""
    for name in ("_commit", "_rollback", "_close", "connect"):
        method = getattr(connection, name)

        def forgetting(*args: Any, _method: Callable[..., Any] = method, **kwargs: Any) -> Any:
            connection.history_track_sent = ""
            return _method(*args, **kwargs)

        setattr(connection, name, forgetting)


def install_wrapper(sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
    """Add the context wrapper to a Django connection (idempotent). Connected
    to ``connection_created`` by the app; ``context()`` also calls it."""
    if connection is None or connection.vendor != "postgresql":
        return
    if _wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, _wrapper)
        _forget_on_transaction_end(connection)


def _install_everywhere() -> None:
    from django.db import connections

    for db in connections.all(initialized_only=True):
        install_wrapper(connection=db)


class context:  # noqa: N801 - used like a function
    """Attach ``metadata`` to every write made inside the block (see the module doc).

    Called, ``context(step="x")`` adds its keys to the innermost open block at
    once; used as a block (or a decorator) it takes them back and makes them a
    block of its own. So a plain call adds keys to the open block until that
    block ends; with no block open that would attach them to nothing, so it
    warns (RuntimeWarning) when the unused object goes away. One object may be
    entered by several threads or tasks at once.
    """

    def __init__(self, *, encoder: type[json.JSONEncoder] = DjangoJSONEncoder, **metadata: Any) -> None:
        self.metadata = metadata
        self.encoder = encoder
        self._serial = next(_serials)
        self._layer = _Layer.of(self._serial, metadata, encoder)  # fails here if a value cannot be encoded
        stack = _stack.get()
        self._added = bool(stack)
        self._used = False
        if stack:
            _stack.set((*stack[:-1], stack[-1].plus(self._layer)))

    def _take_back(self) -> None:
        """Undo what the plain call added (only this call's layer, in whichever
        block it is now)."""
        self._used = True
        if self._added:
            self._added = False
            _stack.set(_without(_stack.get(), self._serial))

    def __enter__(self) -> context:
        self._take_back()
        _install_everywhere()
        stack = _stack.get()
        _stack.set((*stack, _Frame.of(self._serial, (self._layer,), stack[-1] if stack else None)))
        return self

    def __exit__(self, *exc: Any) -> None:
        # Back to the stack outside this object's innermost block in this
        # thread or task (the blocks inside it, and plain calls, end with it).
        stack = _stack.get()
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].owner == self._serial:
                _stack.set(stack[:i])
                return

    def __call__(self, func: F) -> F:
        self._take_back()
        block = self
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            # A block held across yield would end in whatever block the caller
            # has open when the generator resumes: not supported.
            raise TypeError(
                f"history_track.django.context cannot decorate the generator function {func.__qualname__}: use"
                " 'with context(...):' inside it around the work between its yields"
            )
        if iscoroutinefunction(func):  # asgiref's: also the functions sync_to_async made

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with block:
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with block:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __del__(self) -> None:
        if not getattr(self, "_used", True) and not getattr(self, "_added", True):
            warnings.warn(
                f"history_track.django.context({', '.join(self.metadata)}) was called outside any context block"
                " and never entered: its metadata reaches no write. Use it as 'with context(...):' or a"
                " decorator, or call it inside a block (the middleware's request, a task) to add keys to it.",
                RuntimeWarning,
                stacklevel=2,
            )


__all__ = ["acurrent_context", "context", "current_context", "install_wrapper"]
