"""History as ORM models: one event model per tracked model, and ``Events``
across all of them.

    OrderEvent = event_model(Order)              # or made by @track(...)
    OrderEvent.objects.filter(status="paid", total__gt=10, pgh_context__user=1)
    order.events.order_by("pgh_created_at")      # pgh_obj's reverse accessor

    Events.objects.tracks(order)                 # one object, across key changes
    Events.objects.filter(pgh_obj_model="shop.Order", pgh_label="paid")

An event model reads the event table the extension created (``<table>_event``
in the table's schema); it is unmanaged and hidden from the migration
autodetector (``Meta.auto_created``), so it creates, alters and migrates
nothing. ``Events`` reads ``history_events()``, which reads only the event
tables the database role may read; the filters that select tables, objects,
a context id or a time range are passed to it as arguments, so one object's
history reads one event table through its index.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.sql import Query
from django.db.models.sql.datastructures import BaseTable

from ..api import api_schema, key_text

__all__ = ["BaseEvent", "Events", "declare_event_model", "event_model", "event_model_of", "event_table_name"]

#: The event model of each tracked model (the first one made for it).
_event_models: dict[type[models.Model], type[models.Model]] = {}


class ExactJSONDecoder(json.JSONDecoder):
    """JSON numbers with a fraction as Decimal: 12.50 stays Decimal('12.50')."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parse_float", Decimal)
        super().__init__(*args, **kwargs)


def _json_field(**kwargs: Any) -> models.JSONField:
    return models.JSONField(encoder=DjangoJSONEncoder, decoder=ExactJSONDecoder, **kwargs)


# -- names -------------------------------------------------------------------


def event_table_name(table: str) -> str:
    """The name the extension gives the event table of ``table`` (SQL
    _event_table_name): ``<table>_event``; a name that would pass 63 bytes
    keeps as much of the table's name as fits, then ``_<8 hex of md5>_event``."""
    raw = table.encode()[:63].decode(errors="ignore")  # PostgreSQL truncates identifiers to 63 bytes
    if len(raw.encode()) + 6 <= 63:
        return raw + "_event"
    suffix = "_" + hashlib.md5(raw.encode()).hexdigest()[:8] + "_event"
    name = raw
    while len((name + suffix).encode()) > 63:
        name = name[:-1]
    return name + suffix


def _event_db_table(model: type[models.Model]) -> str:
    """The event table as a db_table: in the table's schema when db_table
    names one (Django's ``'schema"."table'`` idiom), else unqualified like
    the table (found on the same search_path)."""
    db_table = model._meta.db_table
    if '"."' in db_table:
        schema, table = db_table.split('"."', 1)
        return f'{schema}"."{event_table_name(table)}'
    return event_table_name(db_table)


# -- event models --------------------------------------------------------------


class BaseEvent(models.Model):
    """The columns every event table has; an event model adds ``pgh_obj``,
    ``pgh_old_obj_id`` and the tracked model's fields."""

    is_history_track_event: ClassVar[bool] = True
    #: The tracked model (set on each event model).
    history_track_model: ClassVar[type[models.Model] | None] = None

    pgh_id = models.BigIntegerField(primary_key=True)
    pgh_created_at = models.DateTimeField()
    pgh_label = models.TextField()
    pgh_operation = models.TextField()
    pgh_context_id = models.UUIDField(null=True)
    pgh_context = _json_field(null=True)
    pgh_statement_id = models.BigIntegerField(null=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        model = self.history_track_model
        return f"{self.pgh_label} {model.__name__ if model else ''} {self.pgh_obj_id} #{self.pgh_id}"


_AUTO_TO_INTEGER: dict[type[models.Field[Any, Any]], type[models.Field[Any, Any]]] = {
    models.AutoField: models.IntegerField,
    models.BigAutoField: models.BigIntegerField,
    models.SmallAutoField: models.SmallIntegerField,
}


def _plain_copy(field: models.Field[Any, Any], **overrides: Any) -> models.Field[Any, Any]:
    """A field of the same class over the same column, without what only a
    table of the model's own needs (key, uniqueness, indexes, defaults in the
    database); a relation stays a relation, without a database constraint and
    without a reverse accessor; an auto field becomes its integer field."""
    column = field.column
    generated = getattr(models, "GeneratedField", None)  # Django 5.0+
    if generated is not None and isinstance(field, generated):
        field = field.output_field  # a stored generated column: its value, as history keeps it
    _name, _path, args, kwargs = field.deconstruct()
    for option in (
        "auto_created",
        "primary_key",
        "unique",
        "db_index",
        "db_default",
        "db_comment",
        "db_tablespace",
        "parent_link",
        "related_query_name",
        "unique_for_date",
        "unique_for_month",
        "unique_for_year",
    ):
        kwargs.pop(option, None)
    kwargs["db_column"] = column
    kwargs.update(overrides)
    if isinstance(field, models.ForeignKey):  # OneToOneField too: uniqueness goes
        kwargs.update(on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
        return models.ForeignKey(*args, **kwargs)
    cls: type[models.Field[Any, Any]] = type(field)
    for auto, integer in _AUTO_TO_INTEGER.items():
        if isinstance(field, auto):
            cls = integer
    return cls(*args, **kwargs)


def _selected(model: type[models.Model], names: Sequence[str] | None) -> set[str] | None:
    """Field names or column names as the model's column names."""
    if names is None:
        return None
    columns = set()
    for name in names:
        try:
            columns.add(model._meta.get_field(name).column)
        except FieldDoesNotExist:  # a column name
            columns.add(name)
    return columns


def _mirrored_fields(
    model: type[models.Model], fields: Sequence[str] | None, exclude: Sequence[str] | None
) -> dict[str, models.Field[Any, Any]]:
    """The fields the event table mirrors: the table's columns (``fields``,
    else all) minus ``exclude``, as _mirrored_columns() chooses them."""
    wanted, unwanted = _selected(model, fields), _selected(model, exclude) or set()
    out = {}
    for field in model._meta.local_concrete_fields:
        if (wanted is not None and field.column not in wanted) or field.column in unwanted:
            continue
        out[field.name] = _plain_copy(field)
    return out


def _key_fields(model: type[models.Model]) -> list[models.Field[Any, Any]]:
    return list(getattr(model._meta, "pk_fields", [model._meta.pk]))


class _CompositeEvents:
    """``obj.events`` for a model with a composite key (Django has no
    relation to such a model): the event model's rows whose pgh_obj_id is
    ``[a, b]``, the object's key values in key order."""

    def __init__(self, event: type[models.Model]) -> None:
        self.event = event

    def __get__(self, obj: models.Model | None, owner: type[models.Model]) -> Any:
        if obj is None:
            return self
        values = [json.loads(json.dumps(v, cls=DjangoJSONEncoder)) for v in obj.pk]
        return self.event._default_manager.filter(pgh_obj_id=values)


def _composite_pgh_obj(self: Any) -> models.Model | None:
    """The tracked object the event is of (None when it no longer exists)."""
    model = self.history_track_model
    found: models.Model | None = model._default_manager.filter(pk=tuple(self.pgh_obj_id)).first()
    return found


def event_model(
    model: type[models.Model],
    *,
    name: str | None = None,
    app_label: str | None = None,
    base: type[models.Model] = BaseEvent,
    related_name: str | None = "events",
    fields: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    meta: dict[str, Any] | None = None,
    module: str | None = None,
) -> type[models.Model]:
    """An ORM model over ``model``'s event table (read-only, unmanaged,
    hidden from migrations).

    ``name`` defaults to ``<Model>Event``, ``app_label`` to the model's app,
    ``module`` to the model's module. ``fields``/``exclude`` are the columns
    the table is tracked with (field or column names, as in TrackModel).
    ``base`` is an abstract subclass of BaseEvent (methods, extra fields over
    columns of the event table); ``meta`` adds Meta options (ordering,
    verbose_name, ...). ``related_name`` names ``pgh_obj``'s reverse accessor
    (``order.events``); None for none.
    """
    if not (isinstance(base, type) and issubclass(base, BaseEvent)):
        raise TypeError(f"base must be BaseEvent or an abstract subclass of it, not {base!r}")
    if model._meta.abstract or model._meta.proxy:
        raise TypeError(f"{model.__name__} has no table of its own to track (abstract or proxy model)")
    if related_name and hasattr(model, related_name):
        # (Django's checks do not look at event models: a clash would replace
        # the attribute silently.)
        raise ValueError(
            f"{model.__name__} already has an attribute {related_name!r}; "
            "pass related_name= another name for this event model's reverse accessor (or None)"
        )
    name = name or f"{model.__name__}Event"
    app_label = app_label or model._meta.app_label
    keys = _key_fields(model)
    attrs: dict[str, Any] = {
        "__module__": module or model.__module__,
        "history_track_model": model,
        "__doc__": f"The history of {model._meta.label}, read from its event table.",
    }
    attrs.update(_mirrored_fields(model, fields, exclude))
    if len(keys) == 1:
        attrs["pgh_obj"] = models.ForeignKey(
            model,
            on_delete=models.DO_NOTHING,
            db_constraint=False,
            db_column="pgh_obj_id",
            related_name=related_name or "+",
        )
        attrs["pgh_old_obj_id"] = _plain_copy(
            keys[0].target_field if keys[0].is_relation else keys[0], null=True, db_column="pgh_old_obj_id"
        )
    else:
        attrs["pgh_obj_id"] = _json_field()
        attrs["pgh_old_obj_id"] = _json_field(null=True)
        attrs["pgh_obj"] = property(_composite_pgh_obj)
    meta_attrs = {
        "app_label": app_label,
        "db_table": _event_db_table(model),
        "managed": False,
        # Hidden from apps.get_models(): the migration autodetector, dumpdata,
        # contenttypes and auth permissions leave the model alone.
        "auto_created": True,
        "verbose_name": f"{model._meta.verbose_name} event",
        "verbose_name_plural": f"{model._meta.verbose_name} events",
        **(meta or {}),
    }
    attrs["Meta"] = type("Meta", (), meta_attrs)
    metaclass: Any = type(base)  # ModelBase
    event: type[models.Model] = metaclass(name, (base,), attrs)
    if len(keys) > 1 and related_name:
        setattr(model, related_name, _CompositeEvents(event))
    _event_models.setdefault(model, event)
    return event


def declare_event_model(
    model: type[models.Model], trackers: Iterable[Any], *, name: str | None = None
) -> type[models.Model] | None:
    """The hook track() calls: ``<Model>Event`` in the model's app and module
    (``from shop.models import OrderEvent``), its fields from the trackers'
    ``columns``/``exclude`` (the event table's columns are chosen by the first
    call that tracks the table). Returns the existing model when there is one."""
    if model in _event_models:
        return _event_models[model]
    fields = exclude = None
    for tracker in trackers:
        fields = fields or getattr(tracker, "columns", None)
        exclude = exclude or getattr(tracker, "exclude", None)
    event = event_model(model, name=name, fields=fields, exclude=exclude)
    module = sys.modules.get(model.__module__)
    if module is not None and not hasattr(module, event.__name__):
        setattr(module, event.__name__, event)
    return event


def event_model_of(model: type[models.Model] | models.Model | str) -> type[models.Model] | None:
    """The event model of a tracked model (class, instance or "app.Model"), or None."""
    cls: Any = apps.get_model(model) if isinstance(model, str) else model if isinstance(model, type) else type(model)
    return _event_models.get(cls._meta.concrete_model)


# -- Events: every tracked model's events ----------------------------------------


def _key(obj: models.Model) -> str:
    if obj.pk is None:
        raise ValueError(f"{type(obj).__name__} instance has no primary key value; save it first")
    return key_text(obj.pk, DjangoJSONEncoder)


def _tables(connection: Any) -> tuple[list[str], list[str], list[str | None]]:
    """Each concrete model's table (as Django quotes it), label and its event
    model's label."""
    tables, labels, events = [], [], []
    for model in apps.get_models():
        if not model._meta.proxy:
            tables.append(connection.ops.quote_name(model._meta.db_table))
            labels.append(model._meta.label)
            event = _event_models.get(model)
            events.append(event._meta.label if event is not None else None)
    return tables, labels, events


class _Args:
    """What the query passes to history_events(): the (table, key) pairs to
    read (None: every table), a context id, a time range. Each narrows what
    is read to a superset of what the filters select; the filters stay."""

    def __init__(self) -> None:
        self.objects: frozenset[tuple[str, str | None]] | None = None
        self.context_id: str | None = None
        self.since: datetime | None = None
        self.until: datetime | None = None

    def copy(self, **changes: Any) -> _Args:
        new = _Args()
        new.__dict__.update(self.__dict__, **changes)
        return new

    def narrowed(self, objects: Iterable[tuple[str, str | None]]) -> _Args:
        """Only these (table, key) pairs (key None: the whole table), within
        what is read already."""
        objects = frozenset(objects)
        if self.objects is not None:
            objects = frozenset(
                (t, k if k is not None else k2)
                for t, k in objects
                for t2, k2 in self.objects
                if t == t2 and (k is None or k2 is None or k == k2)
            )
        return self.copy(objects=objects)


class _EventsTable(BaseTable):
    """FROM history_events(...) with the query's arguments, as the Events
    model's table."""

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        args: _Args = getattr(compiler.query, "history_track_args", None) or _Args()
        params: list[Any]
        if args.objects is None:
            source = (
                api_schema(connection) + ".history_events(NULL::pg_catalog.regclass, NULL::pg_catalog.text, %s::uuid,"
                " %s::timestamptz, %s::timestamptz) AS pgh_h"
            )
            params = [args.context_id, args.since, args.until]
        else:
            # The tables the role may read the history of (as history_events()
            # without tbl), each read with history_events(tbl, key, ...).
            pairs = sorted(args.objects, key=lambda p: (p[0], p[1] or ""))
            source = (
                "(SELECT pgh_e.* FROM (SELECT pgh_t.table_name, pgh_o.key"
                " FROM unnest(%s::text[], %s::text[]) AS pgh_o(tbl, key)"
                " JOIN history_track.tracked_table AS pgh_t"
                " ON pgh_t.table_name OPERATOR(pg_catalog.=) pg_catalog.to_regclass(pgh_o.tbl)"
                " WHERE pg_catalog.has_table_privilege(pgh_t.event_table, 'SELECT') OFFSET 0) AS pgh_s"
                " CROSS JOIN LATERAL "
                + api_schema(connection)
                + ".history_events(pgh_s.table_name, pgh_s.key, %s::uuid,"
                " %s::timestamptz, %s::timestamptz) AS pgh_e) AS pgh_h"
            )
            params = [[p[0] for p in pairs], [p[1] for p in pairs], args.context_id, args.since, args.until]
        tables, labels, events = _tables(connection)
        sql = (
            "(SELECT COALESCE(pgh_m.label, pgh_h.table_name::text) || ':' || pgh_h.pgh_id AS pgh_slug,"
            " pgh_h.table_name::text AS pgh_table,"
            " pgh_m.label AS pgh_obj_model, pgh_m.event_label AS pgh_model,"
            " pgh_h.pgh_id, pgh_h.pgh_created_at, pgh_h.pgh_label, pgh_h.pgh_operation,"
            " pgh_h.pgh_obj_id, pgh_h.pgh_context_id, pgh_h.pgh_context, pgh_h.data AS pgh_data, pgh_h.diff AS pgh_diff"
            f" FROM {source}"
            " LEFT JOIN (SELECT DISTINCT ON (pgh_r.rel) pgh_r.rel, pgh_r.label, pgh_r.event_label FROM"
            " (SELECT pg_catalog.to_regclass(pgh_u.tbl) AS rel, pgh_u.label, pgh_u.event_label"
            " FROM unnest(%s::text[], %s::text[], %s::text[]) AS pgh_u(tbl, label, event_label)) AS pgh_r"
            " WHERE pgh_r.rel IS NOT NULL) AS pgh_m"
            " ON pgh_m.rel = pgh_h.table_name)"
            f" {compiler.quote_name_unless_alias(self.table_alias)}"
        )
        return sql, [*params, tables, labels, events]


def _comparable(value: Any) -> bool:
    """A time PostgreSQL reads as Django's filter does: an aware datetime (or
    any datetime without USE_TZ, both then in the connection's time zone)."""
    from django.conf import settings

    return isinstance(value, datetime) and (value.tzinfo is not None or not settings.USE_TZ)


class _EventsQuery(Query):
    base_table_class = _EventsTable

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.history_track_args = _Args()


def _model_table(model: type[models.Model] | str, connection: Any) -> str:
    cls: Any = apps.get_model(model) if isinstance(model, str) else model
    return str(connection.ops.quote_name(cls._meta.db_table))


class EventsQuerySet(models.QuerySet["Events"]):
    """Events across tracked models. ``tracks(obj)`` and the filters on
    ``pgh_obj_model``, ``pk``, ``pgh_obj_id`` (with one model),
    ``pgh_context_id`` and ``pgh_created_at`` ranges choose which event tables
    (and rows) history_events() reads; every other filter applies to its rows."""

    def __init__(self, model: Any = None, query: Any = None, using: str | None = None, hints: Any = None) -> None:
        super().__init__(model, query or _EventsQuery(model), using, hints)

    def _connection(self) -> Any:
        from django.db import connections

        return connections[self.db]

    def _with_args(self, args: _Args) -> EventsQuerySet:
        clone: EventsQuerySet = self._chain()
        clone.query.history_track_args = args
        return clone

    def tracks(self, *objs: models.Model) -> EventsQuerySet:
        """The events of these objects, each followed back through changes
        of its key (as history_events(tbl, key)); an object's table is read
        through its index, no other table is read."""
        connection = self._connection()
        pairs = [(_model_table(type(obj)._meta.concrete_model, connection), _key(obj)) for obj in objs]
        return self._with_args(self.query.history_track_args.narrowed(pairs))

    def across(self, *event_models: type[models.Model] | str) -> EventsQuerySet:
        """The events of these tracked models ("app.Model", a model, or its event model)."""
        labels = []
        for model in event_models:
            if isinstance(model, str):
                model = apps.get_model(model)
            model = getattr(model, "history_track_model", None) or model
            labels.append(model._meta.label)
        filtered: EventsQuerySet = self.filter(pgh_obj_model__in=labels)
        return filtered

    def __or__(self, other: Any) -> EventsQuerySet:
        # Either side's rows: each side's narrowing is no bound for the other's,
        # so the result reads every table (its filters stay, as written).
        combined: EventsQuerySet = super().__or__(other)
        return combined._with_args(_Args())

    def __xor__(self, other: Any) -> EventsQuerySet:
        combined: EventsQuerySet = super().__xor__(other)
        return combined._with_args(_Args())

    def _filter_or_exclude_inplace(self, negate: bool, args: Any, kwargs: dict[str, Any]) -> None:
        if not negate:
            self.query.history_track_args = self._pushed_down(self.query.history_track_args, kwargs)
        super()._filter_or_exclude_inplace(negate, args, kwargs)

    def _pushed_down(self, args: _Args, kwargs: dict[str, Any]) -> _Args:
        connection = self._connection()
        tables: list[str] | None = None
        for written, value in kwargs.items():
            lookup = written.removesuffix("__exact")  # what the admin's filters write
            if lookup.endswith("__in") and not isinstance(value, (list, tuple, set, frozenset)):
                pass  # a subquery, an expression: left to the filter
            elif lookup in ("pgh_obj_model", "pgh_obj_model__in"):
                labels = [value] if lookup == "pgh_obj_model" else list(value)
                if all(isinstance(label, str) for label in labels):  # (None: the tables no model has)
                    tables = []
                    for label in labels:
                        with contextlib.suppress(LookupError, ValueError):  # no such model: no rows
                            tables.append(_model_table(label, connection))
            elif lookup in ("pk", "pgh_slug", "pk__in", "pgh_slug__in"):
                slugs = list(value) if lookup.endswith("__in") else [value]
                if not all(isinstance(slug, str) for slug in slugs):
                    continue
                try:
                    tables = [_model_table(str(slug).rsplit(":", 1)[0], connection) for slug in slugs]
                except (LookupError, ValueError):
                    tables = None  # a table no model has: read them all
            elif lookup == "pgh_context_id" and value is not None:
                args = args.copy(context_id=str(value) if isinstance(value, UUID) else value)
            elif lookup == "pgh_created_at__range" and all(_comparable(v) for v in value):
                args = self._pushed_down(args, {"pgh_created_at__gte": value[0], "pgh_created_at__lte": value[1]})
            elif lookup.startswith("pgh_created_at__") and not _comparable(value):
                pass  # a date, a string, an expression: left to the filter
            elif lookup in ("pgh_created_at__gte", "pgh_created_at__gt"):
                args = args.copy(since=value if args.since is None else max(args.since, value))
            elif lookup in ("pgh_created_at__lt", "pgh_created_at__lte"):
                until = value + timedelta(microseconds=1) if lookup.endswith("lte") else value
                args = args.copy(until=until if args.until is None else min(args.until, until))
        if tables is not None:
            key = kwargs.get("pgh_obj_id", kwargs.get("pgh_obj_id__exact"))
            pushed_key = (
                key_text(key, DjangoJSONEncoder) if isinstance(key, (int, str, list)) and len(tables) == 1 else None
            )
            args = args.narrowed((table, pushed_key) for table in tables)
        return args


class Events(models.Model):
    """Every tracked model's events, with the row (``pgh_data``), what changed
    (``pgh_diff``) and the context; read-only. ``pgh_obj_model`` is the
    tracked model's label ("shop.Order"; None for a table no installed model
    has), ``pgh_model`` its event model's ("shop.OrderEvent", None when it has
    none), ``pgh_table`` the tracked table, ``pgh_slug`` the key ("shop.Order:12":
    the label and pgh_id). Reads only the event tables the database role may
    read (history_events())."""

    pgh_slug = models.TextField(primary_key=True)
    pgh_table = models.TextField()
    pgh_obj_model = models.TextField(null=True)
    pgh_model = models.TextField(null=True)
    pgh_id = models.BigIntegerField()
    pgh_created_at = models.DateTimeField()
    pgh_label = models.TextField()
    pgh_operation = models.TextField()
    pgh_obj_id = _json_field()
    pgh_context_id = models.UUIDField(null=True)
    pgh_context = _json_field(null=True)
    pgh_data = _json_field(null=True)
    pgh_diff = _json_field(null=True)

    is_history_track_event: ClassVar[bool] = True

    objects = EventsQuerySet.as_manager()

    class Meta:
        app_label = "history_track"
        db_table = "history_events"
        managed = False
        auto_created = True
        ordering = ("pgh_created_at", "pgh_table", "pgh_id")
        verbose_name = "event"
        verbose_name_plural = "events"

    def __str__(self) -> str:
        return f"{self.pgh_label} {self.pgh_obj_model or self.pgh_table} {self.pgh_obj_id} #{self.pgh_id}"

    @property
    def pgh_obj(self) -> models.Model | None:
        """The object the event is of, as it is now (None if it is gone)."""
        if self.pgh_obj_model is None:
            return None
        model = apps.get_model(self.pgh_obj_model)
        key = tuple(self.pgh_obj_id) if isinstance(self.pgh_obj_id, list) else self.pgh_obj_id
        found: models.Model | None = model._default_manager.filter(pk=key).first()
        return found

    def save(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("Events is read-only: history is written by the database")

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise TypeError("Events is read-only: history is written by the database")
