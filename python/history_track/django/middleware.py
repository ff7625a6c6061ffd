"""Per-request context: ``{"user": <pk or null>, "url": <path>, "method": <verb>}``.

Add ``"history_track.django.middleware.HistoryContextMiddleware"`` to
``MIDDLEWARE`` after ``AuthenticationMiddleware``. To attach more, either
subclass and override :meth:`HistoryContextMiddleware.get_context`, or name a
function in the setting ``HISTORY_TRACK_CONTEXT`` (a dotted path or a
callable) that takes the request and returns a dict merged over the defaults.
"""

from __future__ import annotations

from typing import Any, Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from .context import context


class HistoryContextMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        extra = getattr(settings, "HISTORY_TRACK_CONTEXT", None)
        self.extra: Callable[[HttpRequest], dict[str, Any]] | None = (
            import_string(extra) if isinstance(extra, str) else extra
        )

    def get_context(self, request: HttpRequest) -> dict[str, Any]:
        """The metadata attached to the request's writes."""
        user = getattr(request, "user", None)
        metadata: dict[str, Any] = {
            "user": user.pk if user is not None and user.is_authenticated else None,
            "url": request.path,
            "method": request.method,
        }
        if self.extra is not None:
            metadata.update(self.extra(request))
        return metadata

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with context(**self.get_context(request)):
            return self.get_response(request)
