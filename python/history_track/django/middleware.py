"""Per-request context: ``{"user": <pk or null>, "url": <path>, "method": <verb>}``.

Add ``"history_track.django.middleware.HistoryContextMiddleware"`` to
``MIDDLEWARE`` after ``AuthenticationMiddleware``. To attach more, either
subclass and override :meth:`HistoryContextMiddleware.get_context`, or name a
function in the setting ``HISTORY_TRACK_CONTEXT`` (a dotted path or a
callable) that takes the request and returns a dict merged over the defaults.

The user is read when each statement is sent, not when the request begins:
a user a view authenticates itself (Django REST framework's token and
session authentication set ``request.user`` inside the view) is the one its
writes record. The middleware runs sync and async (ASGI) without a thread
hop of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpRequest, HttpResponse
from django.utils.functional import LazyObject, SimpleLazyObject, empty
from django.utils.module_loading import import_string

from .context import context


class RequestUser:
    """A deferred context value: the pk of the request's user when a statement
    is sent (None when anonymous), so a user a view authenticates itself is the
    one recorded. In the event loop, where no query can run, it is the user
    ``await request.auser()`` loaded (``acurrent_context()`` does that first)."""

    def __init__(self, request: HttpRequest) -> None:
        self.request = request
        # What AuthenticationMiddleware set: the async path's user stands in for
        # it while it is not loaded, not for a user set after it.
        self.original = request.__dict__.get("user")
        # The statements that load the user (the session, the user's row) are
        # sent while the lazy user is being set up: asking for the user then
        # would load it a second time, inside the first load (two more queries
        # per request). They are reads, and carry no user.
        self.loading = False
        if isinstance(self.original, SimpleLazyObject) and self.original._wrapped is empty:
            setup = self.original.__dict__["_setupfunc"]

            def load() -> Any:
                self.loading = True
                try:
                    return setup()
                finally:
                    self.loading = False

            self.original.__dict__["_setupfunc"] = load

    def __call__(self) -> Any:
        if self.loading:
            return None
        current = getattr(self.request, "user", None)
        if current is self.original and isinstance(current, LazyObject) and current._wrapped is empty:
            current = getattr(self.request, "_acached_user", current)
        try:
            return current.pk if current is not None and current.is_authenticated else None
        except SynchronousOnlyOperation:  # in the event loop and not loaded: unknown here
            return None

    async def aload(self) -> None:
        """Load the user where the event loop may await it."""
        if self.request.__dict__.get("user") is self.original and hasattr(self.request, "auser"):
            await self.request.auser()


class HistoryContextMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        extra = getattr(settings, "HISTORY_TRACK_CONTEXT", None)
        self.extra: Callable[[HttpRequest], dict[str, Any]] | None = (
            import_string(extra) if isinstance(extra, str) else extra
        )

    def get_context(self, request: HttpRequest) -> dict[str, Any]:
        """The metadata attached to the request's writes. A callable value is
        called when each statement is sent (see :class:`RequestUser`)."""
        metadata: dict[str, Any] = {
            "user": RequestUser(request),
            "url": request.path,
            "method": request.method,
        }
        if self.extra is not None:
            metadata.update(self.extra(request))
        return metadata

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        with context(**self.get_context(request)):
            return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        with context(**self.get_context(request)):
            return await self.get_response(request)
