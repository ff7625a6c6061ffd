"""Carrying application context (user, request, job ...) into the database.

``context(conn, **metadata)`` attaches metadata to every event the wrapped
writes record. It works with psycopg 3 connections, sync and async, as a
context manager or a decorator::

    with history_track.context(conn, user="alice", request="POST /orders"):
        conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")

    async with history_track.context(aconn, job="nightly-import"):
        await aconn.execute(...)

How it reaches the writes:

* The metadata goes into the transaction-local setting ``history_track.context``
  through ``set_history_context()``; nothing is set at session level, so it is
  safe behind transaction poolers and never leaks into the next transaction.
* On an **autocommit** connection with no transaction open, the block runs in
  one transaction (``conn.transaction()``), so every write inside it carries
  the context (and the block commits or rolls back as a whole).
* Inside a transaction (an explicit ``conn.transaction()``, or a
  non-autocommit connection), the metadata is merged into that transaction's
  context; it lasts until the block ends or the transaction ends, whichever
  comes first. Commit inside the block, and later writes in the block have no
  context.
* Nesting merges (inner keys win); leaving the inner block restores the outer
  metadata. All events of one transaction share one context id.

Values are JSON-encoded with :class:`ContextEncoder` (datetimes, dates and
times as ISO 8601, UUIDs and Decimals as strings, sets and tuples as lists);
pass ``encoder=`` (a :class:`json.JSONEncoder` subclass) to change it.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import inspect
import json
import uuid
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Callable, TypeVar

from psycopg import AsyncConnection, AsyncTransaction, Connection, Transaction
from psycopg.pq import TransactionStatus

from .api import api_schema, api_schema_async, set_context_query

F = TypeVar("F", bound=Callable[..., Any])

_GET = "SELECT current_setting('history_track.context', true)"
_RESTORE = "SELECT set_config('history_track.context', coalesce(%s, ''), true)"


class ContextEncoder(json.JSONEncoder):
    """The default encoder for context values."""

    def default(self, o: Any) -> Any:
        if isinstance(o, (_dt.datetime, _dt.date, _dt.time)):
            return o.isoformat()
        if isinstance(o, (uuid.UUID, decimal.Decimal)):
            return str(o)
        if isinstance(o, (set, frozenset, tuple)):
            return list(o)
        return super().default(o)


class context:  # noqa: N801 - used like a function: history_track.context(conn, ...)
    """Attach ``metadata`` to the history written inside the block (see the module doc)."""

    def __init__(
        self,
        conn: Connection[Any] | AsyncConnection[Any],
        *,
        encoder: type[json.JSONEncoder] = ContextEncoder,
        **metadata: Any,
    ) -> None:
        self.conn = conn
        self.metadata = metadata
        self.payload = json.dumps(metadata, cls=encoder)
        # (the transaction the block opened, if any; the setting before the block)
        self._stack: list[
            tuple[
                AbstractContextManager[Transaction] | AbstractAsyncContextManager[AsyncTransaction] | None, str | None
            ]
        ] = []
        self.context_id: uuid.UUID | None = None

    # sync ---------------------------------------------------------------------

    def __enter__(self) -> context:
        conn = self.conn
        if not isinstance(conn, Connection):
            raise TypeError("use 'async with' for an async connection")
        tx = None
        if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
            tx = conn.transaction()
            tx.__enter__()
        previous = conn.execute(_GET).fetchone()[0]  # type: ignore[index]
        self.context_id = conn.execute(*set_context_query(api_schema(conn), self.payload)).fetchone()[0]  # type: ignore[index]
        self._stack.append((tx, previous))
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        conn = self.conn
        assert isinstance(conn, Connection)
        tx, previous = self._stack.pop()
        if conn.info.transaction_status == TransactionStatus.INTRANS:
            conn.execute(_RESTORE, [previous])
        if isinstance(tx, AbstractContextManager):  # else None: the block opened none
            return tx.__exit__(*exc)
        return None

    # async --------------------------------------------------------------------

    async def __aenter__(self) -> context:
        conn = self.conn
        if not isinstance(conn, AsyncConnection):
            raise TypeError("use 'with' for a sync connection")
        tx = None
        if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
            tx = conn.transaction()
            await tx.__aenter__()
        previous = (await (await conn.execute(_GET)).fetchone())[0]  # type: ignore[index]
        self.context_id = (
            await (await conn.execute(*set_context_query(await api_schema_async(conn), self.payload))).fetchone()
        )[0]  # type: ignore[index]
        self._stack.append((tx, previous))
        return self

    async def __aexit__(self, *exc: Any) -> bool | None:
        conn = self.conn
        assert isinstance(conn, AsyncConnection)
        tx, previous = self._stack.pop()
        if conn.info.transaction_status == TransactionStatus.INTRANS:
            await conn.execute(_RESTORE, [previous])
        if isinstance(tx, AbstractAsyncContextManager):  # else None: the block opened none
            return await tx.__aexit__(*exc)
        return None

    # decorator ----------------------------------------------------------------

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self:
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


__all__ = ["ContextEncoder", "context"]
