"""The admin: an object's history on its change page, and revert.

``HistoryAdminMixin`` (put it before ``admin.ModelAdmin``) gives a tracked
model's change page an "Events" button leading to the object's history,
newest first: when, who (linked to the user's admin page), label, operation
and what changed (field verbose names, old → new, long values folded). The
history follows the row across key changes (SQL ``history_events(tbl, key =>
...)``). Each event carrying a row has "Revert to here": a confirmation page
listing what the revert changes, then ``history_track.django.revert()``,
allowed with the model's change permission and recorded, like any write of
the request, with the request's context (``HistoryContextMiddleware``) and
label ``revert``.

The page also answers for a key no row has now (a deleted object): reverting
to one of its events restores the row.

``add_history(site)`` does the same for admins already registered: every
tracked model's ``ModelAdmin`` is re-registered with the mixin.
``EventsAdmin`` over ``history_track.django.models.Events`` lists every
tracked model's events, read-only, with filters, a date hierarchy and search.

A page issues a fixed number of queries whatever the number of events: the
object, one page of events with their diffs and the total, and the users
(and objects of foreign keys) they name (see doc/django.md for the counts).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import DatabaseError, connections, models, transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import select_template
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.text import capfirst

from ..api import Event, api_schema, event_from_row, history_query
from ..render import printable
from .api import _alias, _json, _saved_key, _table, revert

# Operations whose event holds a row to go back to (a DELETE event holds the
# row that was removed; going back to it would delete the row).
_REVERTIBLE = ("INSERT", "UPDATE", "MANUAL", "BASELINE")


@dataclass(frozen=True)
class Change:
    """One field of an event's diff, ready to show."""

    name: str  # the field's verbose name (or the column's name for a column the model no longer has)
    column: str
    old: str | None  # None: no value before (an insert) / after (a delete)
    new: str | None
    fold: bool  # a value too long to show in full at once


@dataclass(frozen=True)
class EventRow:
    """One event of an object's history, ready to show."""

    event: Event
    user: Any  # the user instance, or None
    user_id: Any  # the context's user value (a pk), or None
    user_url: str | None
    changes: list[Change]
    revert_url: str | None

    # (What the database holds is shown through printable(): no control or
    # format character of a writer's reorders, hides or fakes what is shown.)
    @property
    def label(self) -> str:
        return printable(self.event.label)

    @property
    def user_shown(self) -> str | None:
        return None if self.user_id is None else printable(str(self.user_id))


def _page_query(api: str, table: str, key: Any, event_id: int | None, limit: int, offset: int) -> tuple[str, list[Any]]:
    """One page of a row's events, newest first, with the total: history_events
    (which follows the row across key changes) with a LIMIT. With
    ``event_id``, that event only (if it is one of the row's)."""
    sql, params = history_query(api, table, key, None, None, None, None)
    where = "WHERE pgh_h.id = %s" if event_id is not None else ""
    query = f"SELECT pgh_h.*, count(*) OVER () AS pgh_total FROM ({sql}) AS pgh_h {where}"
    return (
        f"{query} ORDER BY pgh_h.id DESC LIMIT %s OFFSET %s",
        [*params, *([event_id] if event_id is not None else []), limit, offset],
    )


def object_events(
    obj: models.Model, *, limit: int, offset: int = 0, event_id: int | None = None, using: str | None = None
) -> tuple[list[Event], int]:
    """One page of ``obj``'s events, newest first, and how many there are in all."""
    alias = _alias(obj, using)
    key = _saved_key(obj)
    with connections[alias].cursor() as cur:
        cur.execute(
            *_page_query(api_schema(connections[alias]), _table(type(obj), alias), key, event_id, limit, offset)
        )
        names = [column[0] for column in cur.description]
        rows = [dict(zip(names, row)) for row in cur.fetchall()]
    total = int(rows[0].pop("pgh_total")) if rows else 0
    for row in rows[1:]:
        row.pop("pgh_total")
    return [event_from_row(row, _json) for row in rows], total


def _text(field: models.Field[Any, Any] | None, value: Any) -> str:
    """A value as the admin shows it: a choice's label, yes/no, the text."""
    if field is not None and field.choices:
        flat = dict(field.flatchoices)
        if value in flat:
            return str(flat[value])
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value == "":
        return '""'  # the empty string, told apart from no value (∅)
    if isinstance(value, (dict, list)):
        return printable(json.dumps(value, ensure_ascii=False, default=str))
    return printable(str(value))


def changes_of(
    model: type[models.Model] | None,
    operation: str,
    diff: dict[str, list[Any]] | None,
    fold_at: int,
    related: dict[str, dict[Any, models.Model]] | None = None,
) -> list[Change]:
    """An event's diff (``{column: [old, new]}``) as Changes in ``model``'s
    field order, named by verbose name (a column the model does not have by
    its name); ``related``: the objects foreign keys name, by column and key."""
    if not diff:
        return []
    related = related or {}
    fields = list(model._meta.concrete_fields) if model is not None else []
    by_column = {f.column: f for f in fields}
    order = {f.column: i for i, f in enumerate(fields)}
    changes = []
    for column in sorted(diff, key=lambda c: (order.get(c, len(order)), c)):
        old, new = diff[column]
        if operation == "INSERT" and old is None and new is None:
            continue  # a column that started NULL: nothing to say
        field = by_column.get(column)
        name = capfirst(str(field.verbose_name)) if field is not None else printable(column)
        objects = related.get(column, {})  # a foreign key's column: its values are scalars
        old_text = (
            None if old is None else printable(str(objects[old])) if objects and old in objects else _text(field, old)
        )
        new_text = (
            None if new is None else printable(str(objects[new])) if objects and new in objects else _text(field, new)
        )
        longest = max(len(old_text or ""), len(new_text or ""))
        changes.append(Change(name, column, old_text, new_text, longest > fold_at))
    return changes


class HistoryAdminMixin(admin.ModelAdmin):
    """A ModelAdmin mixin: the object's history on its change page, and revert."""

    #: events per page of the history view
    history_per_page: int = 50
    #: values longer than this many characters are folded (shown in full on a click)
    history_fold_at: int = 60
    #: whether the history view offers revert (still only with the change permission)
    history_revert: bool = True
    history_template: str | Sequence[str] | None = None
    history_revert_template: str | Sequence[str] | None = None

    # -- urls and the change page's button -----------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        own = [
            path(
                "<path:object_id>/events/",
                self.admin_site.admin_view(self.history_events_view),
                name=f"{prefix}_events",
            ),
            path(
                "<path:object_id>/events/<int:event_id>/revert/",
                self.admin_site.admin_view(self.history_revert_view),
                name=f"{prefix}_revert",
            ),
        ]
        return [*own, *super().get_urls()]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: models.Model | None = None,
    ) -> HttpResponse:
        """The change form as it would be (whatever template it uses), with an
        "Events" button among its object tools."""
        response = super().render_change_form(request, context, add, change, form_url, obj)
        if change and obj is not None and isinstance(response, TemplateResponse):
            base = select_template(
                [response.template_name]
                if isinstance(response.template_name, str)
                else list(response.template_name or [])
            )
            response.template_name = "history_track/admin/change_form.html"
            assert response.context_data is not None
            response.context_data["history_track_base_template"] = getattr(base, "template", base)
            response.context_data["history_track_events_url"] = self._history_url("events", obj.pk)
        return response

    def _history_url(self, view: str, pk: Any, *args: Any) -> str:
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}_{view}"
        return str(reverse(name, args=[quote(pk), *args], current_app=self.admin_site.name))

    # -- the history ------------------------------------------------------------------------

    def history_object(self, request: HttpRequest, object_id: str) -> tuple[models.Model, bool]:
        """The object, and whether it exists: for a key no row has now (a
        deleted object), an unsaved instance with that key, whose history can
        still be read and reverted to (which restores it)."""
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            return obj, True
        try:
            key = self.opts.pk.to_python(unquote(object_id))
        except ValidationError:
            raise Http404(f"{self.opts.verbose_name} with primary key {object_id!r} does not exist") from None
        # A row get_queryset() hides from this user is not a deleted one: its
        # history (current values included) and its revert are not theirs.
        if self.model._base_manager.filter(pk=key).exists():
            raise Http404(f"{self.opts.verbose_name} with primary key {object_id!r} does not exist")
        return self.model(pk=key), False

    def history_may_revert(self, request: HttpRequest, obj: models.Model, exists: bool) -> bool:
        """Revert needs the change permission; restoring a deleted object the add permission too."""
        return bool(
            self.history_revert
            and self.has_change_permission(request, obj if exists else None)
            and (exists or self.has_add_permission(request))
        )

    def history_related(self, events: Iterable[Event]) -> dict[str, dict[Any, models.Model]]:
        """The objects the events' foreign keys name, by column and key: one
        query per foreign key field that appears in the diffs."""
        wanted: dict[str, set[Any]] = {}
        fields = {f.column: f for f in self.opts.concrete_fields if f.many_to_one and f.related_model is not None}
        for event in events:
            for column, values in (event.diff or {}).items():
                if column in fields:
                    wanted.setdefault(column, set()).update(v for v in values if v is not None)
        related = {}
        for column, keys in wanted.items():
            field = fields[column]
            target = field.target_field
            manager = field.related_model._default_manager
            found = manager.in_bulk([target.to_python(k) for k in keys], field_name=target.attname)
            related[column] = {k: found[target.to_python(k)] for k in keys if target.to_python(k) in found}
        return related

    def history_changes(self, event: Event, related: dict[str, dict[Any, models.Model]] | None = None) -> list[Change]:
        """What an event changed, in the model's field order: one Change per
        field; a foreign key as the object it names (when it still exists)."""
        return changes_of(self.model, event.operation, event.diff, self.history_fold_at, related)

    def _users(self, request: HttpRequest, events: Iterable[Event]) -> tuple[dict[Any, Any], bool]:
        """The users the events' contexts name (one query), and whether their
        admin pages may be linked."""
        user_model = get_user_model()
        ids = set()
        for event in events:
            value = (event.context or {}).get("user")
            if value is not None and not isinstance(value, (dict, list, bool)):
                with suppress(ValidationError):
                    ids.add(user_model._meta.pk.to_python(value))
        users = user_model._default_manager.in_bulk(ids) if ids else {}
        user_admin = self.admin_site._registry.get(user_model)
        linkable = user_admin is not None and user_admin.has_view_or_change_permission(request)
        return users, linkable

    def history_rows(
        self, request: HttpRequest, obj: models.Model, events: list[Event], exists: bool = True
    ) -> list[EventRow]:
        users, linkable = self._users(request, events)
        related = self.history_related(events)
        user_model = get_user_model()
        may_revert = self.history_may_revert(request, obj, exists)
        rows = []
        for event in events:
            value = (event.context or {}).get("user")
            try:
                user = users.get(user_model._meta.pk.to_python(value)) if value is not None else None
            except ValidationError:
                user = None
            user_url = None
            if user is not None and linkable:
                try:
                    user_url = reverse(
                        f"admin:{user_model._meta.app_label}_{user_model._meta.model_name}_change",
                        args=[quote(user.pk)],
                        current_app=self.admin_site.name,
                    )
                except NoReverseMatch:
                    user_url = None
            revert_url = (
                self._history_url("revert", obj.pk, event.id) if may_revert and event.operation in _REVERTIBLE else None
            )
            rows.append(EventRow(event, user, value, user_url, self.history_changes(event, related), revert_url))
        return rows

    def history_events_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The object's events, newest first, a page at a time (``?p=2``)."""
        obj, exists = self.history_object(request, object_id)
        if not self.has_view_or_change_permission(request, obj if exists else None):
            raise PermissionDenied
        try:
            number = max(1, int(request.GET.get("p", "1")))
        except ValueError:
            number = 1
        per_page = self.history_per_page
        events, total = object_events(obj, limit=per_page, offset=(number - 1) * per_page)
        if not events and (number > 1 or not exists):
            raise Http404("no such page" if exists else f"{self.opts.verbose_name} {object_id} has no history")
        paginator = Paginator(range(total), per_page)
        page = paginator.get_page(number)
        shown, key_shown = printable(str(obj)), printable(str(obj.pk))
        gone = f"{self.opts.verbose_name} {key_shown}, which no longer exists"
        context = {
            **self.admin_site.each_context(request),
            "title": f"History of {shown if exists else gone}",
            "subtitle": None,
            "opts": self.opts,
            "object": obj,
            "object_shown": shown,
            "key_shown": key_shown,
            "object_exists": exists,
            "module_name": capfirst(str(self.opts.verbose_name_plural)),
            "rows": self.history_rows(request, obj, events, exists),
            "total": total,
            "page": page,
            "page_range": list(paginator.get_elided_page_range(number)) if paginator.num_pages > 1 else [],
            "ellipsis": Paginator.ELLIPSIS,
            "preserved_filters": self.get_preserved_filters(request),
            "is_popup": IS_POPUP_VAR in request.GET,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            self.history_template
            or [
                f"admin/{self.opts.app_label}/{self.opts.model_name}/history_track_events.html",
                f"admin/{self.opts.app_label}/history_track_events.html",
                "history_track/admin/events.html",
            ],
            context,
        )

    # -- revert -----------------------------------------------------------------------------

    def history_revert_changes(self, obj: models.Model, event: Event, exists: bool = True) -> list[Change]:
        """What reverting ``obj`` to ``event`` changes: each field whose value
        now differs from the one the event recorded (current → recorded);
        for a deleted object, every field it gets back."""
        changes = []
        for field in self.opts.concrete_fields:
            if field.column not in event.data:
                continue
            recorded = event.data[field.column]
            current = field.value_from_object(obj) if exists else None
            try:
                same = exists and field.to_python(recorded) == current
            except ValidationError:
                same = False
            if same:
                continue
            old_text = None if current is None else _text(field, current)
            new_text = None if recorded is None else _text(field, recorded)
            longest = max(len(old_text or ""), len(new_text or ""))
            changes.append(
                Change(
                    capfirst(str(field.verbose_name)), field.column, old_text, new_text, longest > self.history_fold_at
                )
            )
        return changes

    def history_revert_view(self, request: HttpRequest, object_id: str, event_id: int) -> HttpResponse:
        """GET: what the revert would change, and a button; POST: revert."""
        obj, exists = self.history_object(request, object_id)
        if not self.history_may_revert(request, obj, exists):
            raise PermissionDenied
        events, _ = object_events(obj, limit=1, event_id=event_id)
        if not events or events[0].operation not in _REVERTIBLE:
            raise Http404(f"{self.opts.verbose_name} {object_id} has no event {event_id} to revert to")
        event = events[0]
        events_url = self._history_url("events", obj.pk)
        if request.method == "POST":
            alias = _alias(obj, None)
            try:
                with transaction.atomic(using=alias):  # the revert and the admin's log entry, or neither
                    written = revert(obj, event=event.id, using=alias)
                    if not exists:
                        obj = self.get_object(request, unquote(object_id)) or obj
                    self.log_change(request, obj, f"{'Reverted' if exists else 'Restored'} to event {event.id}.")
            except DatabaseError as error:
                cause = error.__cause__ or error
                messages.error(request, printable(f"{obj} could not be reverted: {str(cause).split(chr(10))[0]}"))
                return HttpResponseRedirect(events_url)
            messages.success(
                request,
                f"{capfirst(str(self.opts.verbose_name))} “{printable(str(obj))}” was reverted to event {event.id}"
                f" ({written} row{'s' if written != 1 else ''} written).",
            )
            return HttpResponseRedirect(events_url)
        context = {
            **self.admin_site.each_context(request),
            "title": "Are you sure?",
            "subtitle": None,
            "opts": self.opts,
            "object": obj,
            "object_shown": printable(str(obj)),
            "key_shown": printable(str(obj.pk)),
            "object_exists": exists,
            "module_name": capfirst(str(self.opts.verbose_name_plural)),
            "event": event,
            "changes": self.history_revert_changes(obj, event, exists),
            "events_url": events_url,
            "is_popup": IS_POPUP_VAR in request.GET,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            self.history_revert_template
            or [
                f"admin/{self.opts.app_label}/{self.opts.model_name}/history_track_revert.html",
                f"admin/{self.opts.app_label}/history_track_revert.html",
                "history_track/admin/revert.html",
            ],
            context,
        )


def history_admin(admin_class: type[admin.ModelAdmin[Any]]) -> type[admin.ModelAdmin[Any]]:
    """``admin_class`` with the history view (itself, when it has it already)."""
    if issubclass(admin_class, HistoryAdminMixin):
        return admin_class
    return type(admin_class.__name__, (HistoryAdminMixin, admin_class), {"__module__": admin_class.__module__})


def add_history(
    site: admin.AdminSite | None = None, models: Iterable[type[models.Model]] | None = None
) -> list[type[models.Model]]:
    """Give the change page of each of ``models`` registered in ``site`` (the
    default site) the history view, re-registering its ModelAdmin with
    :class:`HistoryAdminMixin`. ``models`` defaults to every model
    ``@track()`` declares or ``event_model()`` made an event model for.
    Call it after the admins are registered (at the end of an ``admin.py``,
    or in ``urls.py``). Returns the models it changed."""
    site = site or admin.site
    if models is None:
        from . import models as event_models
        from . import tracking

        models = [*tracking.tracked_models(), *event_models._event_models]
    changed = []
    for model in models:
        model_admin = site._registry.get(model)
        if model_admin is None or isinstance(model_admin, HistoryAdminMixin):
            continue
        site.unregister(model)
        site.register(model, history_admin(type(model_admin)))
        changed.append(model)
    return changed


# -- every tracked model's events ------------------------------------------------------------


def _catalog(request: HttpRequest, using: str) -> list[tuple[str, str]]:
    """(model label, tracker label) of every tracker of an installed model's
    table: one query per request, shared by the filters."""
    cached: list[tuple[str, str]] | None = getattr(request, "_history_track_catalog", None)
    if cached is None:
        from django.apps import apps

        connection = connections[using]
        installed = [m for m in apps.get_models() if not m._meta.proxy]
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pgh_m.label AS model, pgh_t.label AS label FROM "
                + api_schema(connection)
                + ".history_trackers AS pgh_t"
                " JOIN unnest(%s::text[], %s::text[]) AS pgh_m(tbl, label)"
                " ON pg_catalog.to_regclass(pgh_m.tbl) OPERATOR(pg_catalog.=) pgh_t.table_name ORDER BY 1, 2",
                [[connection.ops.quote_name(m._meta.db_table) for m in installed], [m._meta.label for m in installed]],
            )
            cached = [(str(model), str(label)) for model, label in cur.fetchall()]
        request._history_track_catalog = cached
    return cached


class _EventsFilter(admin.SimpleListFilter):
    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        choices = self.choices_for(request, model_admin)
        value = self.value()
        if value is not None and value not in dict(choices):
            choices.append((value, printable(value)))  # chosen by its URL: shown, so it can be cleared
        return choices

    def choices_for(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        raise NotImplementedError


class ModelFilter(_EventsFilter):
    title = "model"
    parameter_name = "pgh_obj_model"

    def choices_for(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        from django.apps import apps

        allowed = model_admin.viewable_models(request)
        labels = sorted({m for m, _ in _catalog(request, model_admin.using(request))})
        return [
            (label, capfirst(str(apps.get_model(label)._meta.verbose_name)))
            for label in labels
            if allowed is None or label in allowed
        ]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(pgh_obj_model=self.value()) if self.value() else queryset


class LabelFilter(_EventsFilter):
    title = "label"
    parameter_name = "pgh_label"

    def choices_for(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        labels = {label for _, label in _catalog(request, model_admin.using(request))} | {"revert", "baseline"}
        return [(label, printable(label)) for label in sorted(labels)]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(pgh_label=self.value()) if self.value() else queryset


class OperationFilter(_EventsFilter):
    title = "operation"
    parameter_name = "pgh_operation"

    def choices_for(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(op, op) for op in ("INSERT", "UPDATE", "DELETE", "MANUAL", "BASELINE")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(pgh_operation=self.value()) if self.value() else queryset


class UserFilter(_EventsFilter):
    """The context's user: a staff user, no user, or any user by ``?user=<pk>``."""

    title = "user"
    parameter_name = "user"

    def choices_for(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        users = get_user_model()._default_manager.filter(is_staff=True).order_by("pk")
        return [("none", "no user"), *((str(u.pk), u.get_username()) for u in users)]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        from django.db.models import Q

        value = self.value()
        if not value:
            return queryset
        if value == "none":
            return queryset.filter(
                Q(pgh_context__isnull=True) | Q(pgh_context__user__isnull=True) | Q(pgh_context__user=None)
            )
        try:
            pk = get_user_model()._meta.pk.to_python(value)
        except ValidationError:
            return queryset.none()
        return queryset.filter(pgh_context__user=pk)


class ContextFilter(_EventsFilter):
    """One context (one transaction's writes): ``?pgh_context_id=<uuid>``, what
    the context links of the list set."""

    title = "context"
    parameter_name = "pgh_context_id"

    def choices_for(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return []

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        return [(value, f"{value[:8]}…")] if value else []

    def has_output(self) -> bool:
        return True

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        from uuid import UUID

        if not self.value():
            return queryset
        try:
            return queryset.filter(pgh_context_id=UUID(self.value()))
        except ValueError:
            return queryset.none()


class EventsAdmin(admin.ModelAdmin):
    """Read-only: every tracked model's events (``history_track.django.models.Events``),
    newest first, with filters by model, label, operation, user and context,
    a date hierarchy and search. Register it with
    ``admin.site.register(Events, EventsAdmin)``.

    Event models have no permissions of their own: a superuser sees every
    event; a staff user the events of the models whose admin (in this site)
    they may view, unless that admin shows only some rows (it overrides
    ``get_queryset``): those rows' events stay on each object's own history
    page, which applies it."""

    list_display = ("time", "object_link", "label", "operation", "user_link", "changes", "context_link")
    list_display_links = None
    list_filter = (ModelFilter, LabelFilter, OperationFilter, UserFilter, ContextFilter)
    date_hierarchy = "pgh_created_at"
    search_fields = ("pgh_label", "pgh_obj_id", "pgh_context", "pgh_data")
    ordering = ("-pgh_created_at", "-pgh_id")
    show_full_result_count = False
    list_per_page = 50
    history_fold_at = 60

    def using(self, request: HttpRequest) -> str:
        from django.db import router

        return str(router.db_for_read(self.model))

    def viewable_models(self, request: HttpRequest) -> set[str] | None:
        """Labels of the models whose events the user may see (None: all, a superuser)."""
        user: Any = request.user
        if user.is_active and user.is_superuser:
            return None
        cached: set[str] | None = getattr(request, "_history_track_viewable", None)
        if cached is None:
            cached = {
                model._meta.label
                for model, model_admin in self.admin_site._registry.items()
                if model is not self.model
                and model_admin.has_view_or_change_permission(request)
                # An admin that shows a user only some rows (its own get_queryset)
                # cannot have that applied to events across models: left out.
                and type(model_admin).get_queryset is admin.ModelAdmin.get_queryset
            }
            request._history_track_viewable = cached
        return cached

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user: Any = request.user
        if not (user.is_active and user.is_staff):
            return False
        allowed = self.viewable_models(request)
        if allowed is None:
            return True
        return obj.pgh_obj_model in allowed if obj is not None else bool(allowed)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def get_queryset(self, request: HttpRequest) -> Any:
        queryset = super().get_queryset(request)
        allowed = self.viewable_models(request)
        return queryset if allowed is None else queryset.filter(pgh_obj_model__in=sorted(allowed))

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _EventsChangeList

    # -- columns ---------------------------------------------------------------------------

    @admin.display(description="date/time", ordering="pgh_created_at")  # type: ignore[untyped-decorator]
    def time(self, event: Any) -> Any:
        return event.pgh_created_at

    @admin.display(description="label", ordering="pgh_label")  # type: ignore[untyped-decorator]
    def label(self, event: Any) -> str:
        return printable(str(event.pgh_label))

    @admin.display(description="operation", ordering="pgh_operation")  # type: ignore[untyped-decorator]
    def operation(self, event: Any) -> str:
        return printable(str(event.pgh_operation))

    @admin.display(description="object")  # type: ignore[untyped-decorator]
    def object_link(self, event: Any) -> str:
        from django.apps import apps
        from django.utils.html import format_html

        if event.pgh_obj_model is None:
            return printable(f"{event.pgh_table} {event.pgh_obj_id}")
        model = apps.get_model(event.pgh_obj_model)
        key = tuple(event.pgh_obj_id) if isinstance(event.pgh_obj_id, list) else event.pgh_obj_id
        label = f"{capfirst(str(model._meta.verbose_name))} {printable(str(key))}"
        model_admin = self.admin_site._registry.get(model)
        if model_admin is None:
            return label
        view = "events" if isinstance(model_admin, HistoryAdminMixin) else "change"
        try:
            url = reverse(
                f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}",
                args=[quote(key)],
                current_app=self.admin_site.name,
            )
        except NoReverseMatch:
            return label
        return str(format_html('<a href="{}">{}</a>', url, label))

    @admin.display(description="user")  # type: ignore[untyped-decorator]
    def user_link(self, event: Any) -> str:
        from django.utils.html import format_html

        value = (event.pgh_context or {}).get("user")
        user, url = getattr(event, "history_track_user", (None, None))
        if user is None:
            return "—" if value is None else printable(f"#{value}")
        return str(format_html('<a href="{}">{}</a>', url, user.get_username()) if url else user.get_username())

    @admin.display(description="changes")  # type: ignore[untyped-decorator]
    def changes(self, event: Any) -> str:
        from django.apps import apps
        from django.template.loader import render_to_string

        model = apps.get_model(event.pgh_obj_model) if event.pgh_obj_model else None
        changes = changes_of(model, event.pgh_operation, event.pgh_diff, self.history_fold_at)
        return str(render_to_string("history_track/admin/_changes.html", {"changes": changes, "diff": event.pgh_diff}))

    @admin.display(description="context")  # type: ignore[untyped-decorator]
    def context_link(self, event: Any) -> str:
        from django.utils.html import format_html

        if event.pgh_context_id is None:
            return "—"
        return str(
            format_html(
                '<a href="?pgh_context_id={}" title="{}">{}…</a>',
                event.pgh_context_id,
                event.pgh_context_id,
                str(event.pgh_context_id)[:8],
            )
        )


class _EventsChangeList(ChangeList):
    """The list's users loaded at once (one query), and the page's style."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        user_model = get_user_model()
        ids = {}
        for event in self.result_list:
            value = (event.pgh_context or {}).get("user")
            if value is not None and not isinstance(value, (dict, list, bool)):
                with suppress(ValidationError):
                    ids[event.pgh_slug] = user_model._meta.pk.to_python(value)
        users = user_model._default_manager.in_bulk(set(ids.values())) if ids else {}
        user_admin = self.model_admin.admin_site._registry.get(user_model)
        linkable = user_admin is not None and user_admin.has_view_or_change_permission(request)
        for event in self.result_list:
            user = users.get(ids.get(event.pgh_slug))
            url = None
            if user is not None and linkable:
                url = reverse(
                    f"admin:{user_model._meta.app_label}_{user_model._meta.model_name}_change",
                    args=[quote(user.pk)],
                    current_app=self.model_admin.admin_site.name,
                )
            event.history_track_user = (user, url)
