"""Event models and Events (history_track.django.models) against the test
project (tests/django_project, tracked by its migrations' TrackModel
operations): exact rows through the ORM, event tables named as the extension
names them, no migration for them, one event table read for one object's
history, and the database's read privileges."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from test_django import DRIVER, db, project  # noqa: F401  (Django configured once per process; a fresh database per test)


def event_models() -> tuple[Any, Any, Any]:
    """The event models of shop.Order, Customer and OrderLine: the project
    tracks them with TrackModel, so they are made with event_model() (once),
    with the options the migrations track them with."""
    from history_track.django.models import event_model, event_model_of
    from shop.models import Customer, Order, OrderLine

    return (
        event_model_of(Order) or event_model(Order),
        event_model_of(Customer) or event_model(Customer, exclude=["email"]),
        event_model_of(OrderLine) or event_model(OrderLine),
    )


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of the driver's error behind Django's (psycopg 3 or psycopg2)."""
    cause = error.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def make_order(total: str = "10.00", **kw: Any) -> Any:
    from shop.models import Order

    return Order.objects.create(total=Decimal(total), **kw)


# -- event models -----------------------------------------------------------------


def test_event_models_name_the_event_tables_the_extension_made(db):
    from django.db import connection

    order_event, customer_event, line_event = event_models()
    assert order_event._meta.db_table == 'shop"."Orders_event'
    assert order_event.__name__ == "OrderEvent" and order_event._meta.app_label == "shop"
    with psycopg.connect(db) as conn:
        tracked = dict(
            conn.execute("SELECT DISTINCT table_name::oid, event_table::oid FROM history_trackers").fetchall()
        )
        for event in (order_event, customer_event, line_event):
            model = event.history_track_model
            table, event_table = conn.execute(
                "SELECT to_regclass(%s)::oid, to_regclass(%s)::oid",
                [connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(event._meta.db_table)],
            ).fetchone()
            assert tracked[table] == event_table, model


def test_event_table_name_follows_the_sql_rule(db):
    from history_track.django.models import event_table_name
    names = ["orders", "x" * 57, "x" * 58, "y" * 63, "Ünïcødé_" * 7, "é" * 31 + "abc", "Orders"]
    with psycopg.connect(db) as conn:
        expected = [conn.execute("SELECT history_track._event_table_name(%s::name)::text", [n]).fetchone()[0]
                    for n in names]
    assert [event_table_name(n) for n in names] == expected
    assert expected[1] == "x" * 57 + "_event" and expected[2].endswith("_event") and len(expected[2]) == 63


def test_event_model_fields_are_the_event_tables_columns_and_types(db):
    """Every field of an event model is a column of its event table, of the
    type Django would give it; the mirrored fields are the tracked ones."""
    from django.db import connection

    order_event, customer_event, line_event = event_models()
    assert [f.name for f in order_event._meta.concrete_fields] == [
        "pgh_id",
        "pgh_created_at",
        "pgh_label",
        "pgh_operation",
        "pgh_context_id",
        "pgh_context",
        "pgh_statement_id",
        "id",
        "customer",
        "status",
        "total",
        "note",
        "pgh_obj",
        "pgh_old_obj_id",
    ]
    assert [f.name for f in customer_event._meta.concrete_fields][7:] == [
        "id",
        "full_name",
        "pgh_obj",
        "pgh_old_obj_id",
    ]
    assert [f.name for f in line_event._meta.concrete_fields][7:] == [
        "order",
        "line_no",
        "sku",
        "quantity",
        "pgh_obj_id",
        "pgh_old_obj_id",
    ]
    with psycopg.connect(db) as conn:
        for event in (order_event, customer_event, line_event):
            columns = dict(
                conn.execute(
                    "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
                    [connection.ops.quote_name(event._meta.db_table)],
                ).fetchall()
            )
            fields = {f.column: f.db_type(connection) for f in event._meta.concrete_fields}
            assert set(fields) == set(columns), event
            # Django's type names, spelled as PostgreSQL spells them.
            probe = ", ".join(f"{connection.ops.quote_name(c)} {t}" for c, t in fields.items())
            conn.execute(f"CREATE TEMP TABLE probe ({probe})")
            spelled = dict(
                conn.execute(
                    "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = 'probe'::regclass AND attnum > 0"
                ).fetchall()
            )
            conn.execute("DROP TABLE probe")
            assert spelled == columns, event


def test_event_model_queries_filter_join_and_follow_pgh_obj(db):
    from django.db.models import Count
    from history_track.django import context
    from shop.models import Customer, Order

    order_event, customer_event, _ = event_models()
    ann = Customer.objects.create(full_name="Ann", email="ann@example.com")
    a = make_order("5.00", customer=ann)
    b = make_order("20.00")
    with context(user=7, job="billing"):
        a.status = "paid"
        a.save()
        b.status = "paid"
        b.save()
    b.total = Decimal("25.50")
    b.save()

    assert list(
        order_event.objects.filter(status="paid", total__gt=10)
        .order_by("pgh_id")
        .values_list("pgh_label", "pgh_obj_id", "total", "pgh_context")
    ) == [
        ("paid", b.pk, Decimal("20.00"), {"user": 7, "job": "billing"}),
        ("update", b.pk, Decimal("20.00"), {"user": 7, "job": "billing"}),
        ("update", b.pk, Decimal("25.50"), None),
    ]
    assert sorted(
        order_event.objects.filter(pgh_context__user=7, pgh_label="update").values_list("pgh_obj_id", flat=True)
    ) == sorted([a.pk, b.pk])
    # The reverse accessor, a join through the mirrored relation, pgh_obj.
    assert [(e.pgh_operation, e.pgh_label, e.status) for e in a.events.order_by("pgh_created_at", "pgh_id")] == [
        ("INSERT", "insert", "new"),
        ("UPDATE", "paid", "paid"),
        ("UPDATE", "update", "paid"),
    ]
    assert list(
        order_event.objects.filter(customer__full_name="Ann").values_list("pgh_label", flat=True).order_by("pgh_id")
    ) == ["insert", "paid", "update"]
    assert order_event.objects.get(pgh_obj=b, pgh_label="insert").pgh_obj == b
    assert list(Order.objects.filter(events__pgh_label="paid").order_by("pk")) == [a, b]
    assert list(Order.objects.annotate(n=Count("events")).order_by("pk").values_list("n", flat=True)) == [3, 4]
    assert [(e.full_name, e.pgh_obj_id) for e in customer_event.objects.all()] == [("Ann", ann.pk)]
    # History outlives the row: deleting the order touches no event, and the
    # events keep its key.
    a_pk = a.pk
    a.delete()
    assert list(
        order_event.objects.filter(pgh_obj_id=a_pk).order_by("pgh_id").values_list("pgh_operation", flat=True)
    ) == ["INSERT", "UPDATE", "UPDATE", "DELETE"]
    with pytest.raises(Order.DoesNotExist):
        order_event.objects.filter(pgh_obj_id=a_pk).first().pgh_obj  # noqa: B018


def test_composite_key_event_model(db):
    from shop.models import OrderLine

    _, _, line_event = event_models()
    order = make_order()
    line = OrderLine.objects.create(order=order, line_no=1, sku="tea", quantity=1)
    other = OrderLine.objects.create(order=order, line_no=2, sku="cup", quantity=2)
    line.quantity = 3
    line.save()
    assert [(e.pgh_operation, e.pgh_obj_id, e.quantity) for e in line.events.order_by("pgh_id")] == [
        ("INSERT", [order.pk, 1], 1),
        ("UPDATE", [order.pk, 1], 3),
    ]
    assert [e.pgh_obj_id for e in other.events.all()] == [[order.pk, 2]]
    event = line_event.objects.get(pgh_obj_id=[order.pk, 1], pgh_operation="INSERT")
    assert event.pgh_obj == line and event.order == order
    assert line_event.objects.filter(order__total=Decimal("10.00"), quantity__gte=2).count() == 2


def test_composite_key_events_across_models(db):
    from history_track.django.models import Events
    from shop.models import OrderLine
    order = make_order()
    line = OrderLine.objects.create(order=order, line_no=1, sku="tea", quantity=1)
    OrderLine.objects.create(order=order, line_no=2, sku="cup", quantity=2)
    OrderLine.objects.filter(pk=line.pk).update(quantity=5)
    assert list(Events.objects.tracks(line).values_list("pgh_obj_model", "pgh_obj_id", "pgh_diff")) == [
        ("shop.OrderLine", [order.pk, 1], {"order_id": [None, order.pk], "line_no": [None, 1], "sku": [None, "tea"],
                                           "quantity": [None, 1]}),
        ("shop.OrderLine", [order.pk, 1], {"quantity": [1, 5]})]
    assert Events.objects.tracks(line).last().pgh_obj == line
    assert Events.objects.filter(pgh_obj_model="shop.OrderLine", pgh_obj_id=[order.pk, 2]).count() == 1


class AuditBase:
    pass


def audit_model() -> Any:
    """A second, customised event model of Order, in another app (made once per process)."""
    from history_track.django.models import BaseEvent, event_model
    from shop.models import Order
    global OrderAudit
    if "OrderAudit" not in globals():
        from django.db import models

        class Base(BaseEvent):
            def summary(self) -> str:
                return f"{self.pgh_label}: {self.status}"

            class Meta:
                abstract = True

        OrderAudit = event_model(Order, name="OrderAudit", app_label="history_track", base=Base,
                                 related_name="audit", meta={"ordering": ["-pgh_id"], "verbose_name": "audit"},
                                 module=__name__)
    return OrderAudit


def test_event_model_factory_options(db):
    from history_track.django.models import event_model, event_model_of
    from shop.models import Order
    order_event = event_models()[0]
    audit = audit_model()
    order = make_order()
    order.status = "paid"; order.save()
    assert audit._meta.label == "history_track.OrderAudit" and audit._meta.db_table == order_event._meta.db_table
    assert [e.summary() for e in order.audit.all()] == ["update: paid", "paid: paid", "insert: new"]
    assert [e.pgh_label for e in order.events.order_by("pgh_id")] == ["insert", "paid", "update"]
    assert str(audit._meta.verbose_name) == "audit" and audit.is_history_track_event
    assert event_model_of(Order) is order_event and event_model_of("shop.Order") is order_event
    assert event_model_of(order) is order_event
    with pytest.raises(TypeError, match="base must be BaseEvent"):
        event_model(Order, name="Wrong", base=AuditBase)
    with pytest.raises(ValueError, match="Order already has an attribute 'events'; pass related_name="):
        event_model(Order, name="Again")
    with pytest.raises(ValueError, match="already has an attribute 'status'"):
        event_model(Order, name="Again", related_name="status")


def test_declare_event_model_takes_the_trackers_columns(db):
    """What track() calls: the event model made once, its fields the columns
    the trackers choose, its table named by the rule for long names."""
    import test_django_models
    from django.db import models
    from django.test.utils import isolate_apps
    from history_track.django.models import declare_event_model, event_table_name
    from history_track.django.tracking import Tracker
    with isolate_apps("shop"):
        class Gadget(models.Model):
            name = models.CharField(max_length=10)
            secret = models.TextField()
            parent = models.OneToOneField("self", null=True, on_delete=models.CASCADE)
            price = models.IntegerField()
            doubled = models.GeneratedField(expression=models.F("price") * 2, output_field=models.IntegerField(),
                                            db_persist=True, db_column="twice")

            class Meta:
                app_label = "shop"
                db_table = "gadgets_" + "g" * 60

        try:
            event = declare_event_model(Gadget, [Tracker(), Tracker(label="named", exclude=("secret",))])
            assert event.__name__ == "GadgetEvent" and test_django_models.GadgetEvent is event
            assert declare_event_model(Gadget, [Tracker()]) is event
            assert [f.name for f in event._meta.concrete_fields][7:] == [
                "id", "name", "parent", "price", "doubled", "pgh_obj", "pgh_old_obj_id"]
            # The auto key an integer, the stored generated column its value.
            assert [(type(event._meta.get_field(n)), event._meta.get_field(n).column) for n in ("id", "doubled")] == [
                (models.BigIntegerField, "id"), (models.IntegerField, "twice")]
            assert not event._meta.get_field("id").primary_key and event._meta.pk.name == "pgh_id"
            with psycopg.connect(db) as conn:   # PostgreSQL cuts the table's name to 63 bytes first
                expected = conn.execute("SELECT history_track._event_table_name(%s::name)::text",
                                        [Gadget._meta.db_table]).fetchone()[0]
            assert event._meta.db_table == event_table_name(Gadget._meta.db_table) == expected
            assert expected.startswith("gadgets_" + "g" * 40) and expected.endswith("_event") and len(expected) == 63
            parent = event._meta.get_field("parent")
            assert (type(parent), parent.db_constraint, parent.remote_field.related_name, parent.column) == (
                models.ForeignKey, False, "+", "parent_id")
        finally:
            del test_django_models.GadgetEvent


def test_event_models_write_nothing(db):
    """The event table is the extension's: an ORM write to it is refused by
    the database (the table is append-only)."""
    from django.db import transaction

    order_event, _, _ = event_models()
    make_order()
    with pytest.raises(Exception) as info, transaction.atomic():
        order_event.objects.update(status="forged")
    assert sqlstate(info.value) == "42501", info.value
    assert list(order_event.objects.values_list("status", flat=True)) == ["new"]


def test_makemigrations_stays_clean_with_event_models(db):
    """The event models (and Events) are unmanaged and auto_created: no
    migration creates or alters them, and migrate leaves them alone."""
    from django.apps import apps
    from django.core.management import call_command
    from history_track.django.models import Events

    events = event_models()
    assert all(e not in apps.get_models() for e in (*events, Events))
    assert all(not e._meta.managed for e in (*events, Events))
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # SystemExit(1) on a change
    assert "No changes detected" in out.getvalue()
    with psycopg.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM pg_class").fetchone()
    call_command("migrate", verbosity=0)
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM pg_class").fetchone() == before


# -- Events: all models' events -------------------------------------------------------


def test_events_combined_with_or_read_both_sides(db):
    """An OR of two querysets has either side's events: the tables one side is
    narrowed to do not bound the other's."""
    from history_track.django.models import Events
    from shop.models import Customer

    Customer.objects.create(full_name="Ann")
    make_order("5.00")
    orders = Events.objects.filter(pgh_obj_model="shop.Order")
    customers = Events.objects.filter(pgh_obj_model="shop.Customer")
    assert (orders.count(), customers.count()) == (1, 1)
    assert sorted(e.pgh_obj_model for e in orders | customers) == ["shop.Customer", "shop.Order"]
    assert sorted(e.pgh_obj_model for e in customers | orders) == ["shop.Customer", "shop.Order"]
    assert [e.pgh_obj_model for e in orders ^ customers.filter(pgh_label="nothing")] == ["shop.Order"]
    assert (orders & customers).count() == 0


def test_events_across_models_with_data_diff_and_context(db):
    from django.db import transaction
    from history_track.django import context
    from history_track.django.models import Events
    from shop.models import Customer

    # Events names an object's event model once the model exists: make it
    # first, as an application that declares it does (this test may run alone).
    order_event = event_models()[0]
    ann = Customer.objects.create(full_name="Ann", email="ann@example.com")
    order = make_order("5.00", customer=ann)
    with transaction.atomic(), context(user=7):
        order.status = "paid"
        order.save()
        ann.full_name = "Anne"
        ann.save()
    other = make_order("1.00")

    rows = [
        (e.pgh_obj_model, e.pgh_label, e.pgh_operation, e.pgh_obj_id, e.pgh_diff, e.pgh_context)
        for e in Events.objects.tracks(order)
    ]
    assert rows == [
        (
            "shop.Order",
            "insert",
            "INSERT",
            order.pk,
            {
                "id": [None, order.pk],
                "customer_id": [None, ann.pk],
                "status": [None, "new"],
                "total": [None, Decimal("5.00")],
                "note": [None, ""],
            },
            None,
        ),
        ("shop.Order", "paid", "UPDATE", order.pk, {"status": ["new", "paid"]}, {"user": 7}),
        ("shop.Order", "update", "UPDATE", order.pk, {"status": ["new", "paid"]}, {"user": 7}),
    ]
    first = Events.objects.tracks(order).first()
    assert first.pgh_data == {
        "id": order.pk,
        "customer_id": ann.pk,
        "status": "new",
        "total": Decimal("5.00"),
        "note": "",
    }
    assert first.pgh_obj == order and first.pgh_model == order_event._meta.label == "shop.OrderEvent"
    assert first.pk == f"shop.Order:{first.pgh_id}" and Events.objects.get(pk=first.pk).pgh_data == first.pgh_data

    # Filters: model, label, operation, context id, context keys, time (one
    # transaction's events share their time; then they come by table).
    ctx_id = Events.objects.tracks(order).get(pgh_label="paid").pgh_context_id
    assert [(e.pgh_obj_model, e.pgh_label) for e in Events.objects.filter(pgh_context_id=ctx_id)] == [
        ("shop.Order", "paid"),
        ("shop.Order", "update"),
        ("shop.Customer", "update"),
    ]
    assert list(Events.objects.filter(pgh_context__user=7).values_list("pgh_obj_model", "pgh_obj_id")) == [
        ("shop.Order", order.pk),
        ("shop.Order", order.pk),
        ("shop.Customer", ann.pk),
    ]
    assert list(Events.objects.across("shop.Customer").values_list("pgh_operation", "pgh_diff")) == [
        ("INSERT", {"id": [None, ann.pk], "full_name": [None, "Ann"]}),
        ("UPDATE", {"full_name": ["Ann", "Anne"]}),
    ]
    assert list(
        Events.objects.filter(pgh_label="insert", pgh_obj_model="shop.Order").values_list("pgh_obj_id", flat=True)
    ) == [order.pk, other.pk]
    assert Events.objects.filter(pgh_operation="UPDATE").count() == 3
    paid_at = Events.objects.tracks(order).get(pgh_label="paid").pgh_created_at
    assert list(Events.objects.filter(pgh_created_at__gt=paid_at).values_list("pgh_obj_id", flat=True)) == [other.pk]
    assert list(
        Events.objects.filter(pgh_created_at__lte=paid_at, pgh_obj_model="shop.Customer").values_list(
            "pgh_label", flat=True
        )
    ) == ["insert", "update"]
    assert Events.objects.tracks(order, other).count() == 4
    assert Events.objects.tracks(order).filter(pgh_obj_model="shop.Customer").count() == 0
    assert Events.objects.exclude(pgh_obj_model="shop.Order").count() == 2


def test_events_of_an_object_follow_key_changes(db):
    from history_track.django.models import Events
    from shop.models import Order

    order = make_order()
    Order.objects.filter(pk=order.pk).update(id=order.pk + 100)
    moved = Order.objects.get(pk=order.pk + 100)
    assert list(Events.objects.tracks(moved).values_list("pgh_operation", "pgh_obj_id")) == [
        ("INSERT", order.pk),
        ("UPDATE", order.pk + 100),
    ]
    # A filter on pgh_obj_id is a filter: the key's own events only.
    assert list(
        Events.objects.filter(pgh_obj_model="shop.Order", pgh_obj_id=moved.pk).values_list("pgh_operation", flat=True)
    ) == ["UPDATE"]


def _scans(connection: Any) -> dict[str, int]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT relname::text, COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_xact_user_tables "
            "WHERE relname LIKE '%%event'"
        )
        return dict(cur.fetchall())


def event_tables_read(queryset: Any) -> set[str]:
    """The event tables evaluating queryset scans: pg_stat_xact_user_tables
    before and after, in one transaction (its counts only grow there; on
    PostgreSQL 15+ they may also hold earlier transactions' counts not yet
    flushed, hence the difference)."""
    from django.db import connection, transaction
    with transaction.atomic():
        before = _scans(connection)
        list(queryset)
        after = _scans(connection)
    return {name for name, n in after.items() if n > before.get(name, 0)}


def test_one_objects_events_read_only_its_event_table(db):
    """tracks() and the filters that choose a model (or a model and a key)
    read one event table; no filter, or one on a label, reads them all."""
    from history_track.django.models import Events
    from shop.models import Customer
    order = make_order()
    Customer.objects.create(full_name="Ann")
    every = {"Orders_event", "shop_customer_event", "shop_orderline_event"}
    assert event_tables_read(Events.objects.tracks(order)) == {"Orders_event"}
    assert event_tables_read(Events.objects.filter(pgh_obj_model="shop.Order", pgh_obj_id=order.pk)) == {"Orders_event"}
    # As the admin's filters write it; a time as a string is left to the filter.
    assert event_tables_read(Events.objects.filter(pgh_obj_model__exact="shop.Customer",
                                                   pgh_created_at__gte="2000-01-01T00:00Z")) == {"shop_customer_event"}
    assert event_tables_read(Events.objects.across("shop.Customer", "shop.OrderLine")) == {
        "shop_customer_event", "shop_orderline_event"}
    assert event_tables_read(Events.objects.all()) == every
    assert event_tables_read(Events.objects.filter(pgh_label="insert")) == every
    # The tables no model has: none here, and every table is read to know it.
    assert event_tables_read(Events.objects.filter(pgh_obj_model=None)) == every
    assert Events.objects.filter(pgh_obj_model=None).count() == 0
    assert Events.objects.count() == 2


def test_events_read_only_what_the_role_may_read(db):
    """A role that may read the orders' history but not the customers' sees
    only the orders' events through Events, as through history_events(); an
    event model of a table it may not read fails with the database's error."""
    from django.db import connection
    from django.db.utils import ProgrammingError
    from history_track.django.models import Events
    from shop.models import Customer

    _, customer_event, _ = event_models()
    order = make_order()
    ann = Customer.objects.create(full_name="Ann")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS clerk")
        conn.execute("CREATE ROLE clerk")
        conn.execute('GRANT USAGE ON SCHEMA shop TO clerk; GRANT SELECT ON shop."Orders_event" TO clerk')
    with connection.cursor() as cur:
        cur.execute("SET ROLE clerk")
    try:
        assert list(Events.objects.values_list("pgh_obj_model", "pgh_obj_id")) == [("shop.Order", order.pk)]
        assert list(Events.objects.tracks(ann)) == []
        assert list(Events.objects.across("shop.Customer")) == []
        assert Events.objects.filter(pgh_slug__in=["shop.Customer:1", f"shop.Order:{order.pk}"]).count() == 1
        with pytest.raises(ProgrammingError) as info:
            list(customer_event.objects.all())
        assert sqlstate(info.value) == "42501"
    finally:
        with connection.cursor() as cur:
            cur.execute("RESET ROLE")


def test_events_are_read_only(db):
    from history_track.django.models import Events

    make_order()
    event = Events.objects.get()
    with pytest.raises(TypeError, match="read-only"):
        event.save()
    with pytest.raises(TypeError, match="read-only"):
        event.delete()


def test_events_is_one_query_and_time_ranges_push_down(db):
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from history_track.django.models import Events
    order = make_order()
    with CaptureQueriesContext(connection) as queries:
        assert [e.pgh_label for e in Events.objects.tracks(order)] == ["insert"]
        assert Events.objects.across("shop.Order").count() == 1
        # A subquery stays a subquery (one statement), relabeled inside it.
        assert Events.objects.filter(pgh_slug__in=Events.objects.tracks(order).values("pgh_slug")).count() == 1
    assert len(queries.captured_queries) == 3
    assert all("history_events(" in q["sql"] for q in queries.captured_queries)
    at = Events.objects.get().pgh_created_at
    qs = Events.objects.filter(pgh_created_at__range=(at, at))
    assert (qs.query.history_track_args.since, qs.query.history_track_args.until) == (at, at + timedelta(microseconds=1))
    assert [e.pgh_obj_id for e in qs] == [order.pk]
    assert Events.objects.filter(pgh_created_at__lt=at).count() == 0
    assert Events.objects.filter(pgh_created_at__lte=at, pgh_created_at__gt=at - timedelta(seconds=1)).count() == 1


@pytest.mark.skipif(DRIVER == "psycopg2", reason="this is the run on psycopg2")
def test_event_models_and_events_on_psycopg2(request):
    """This module again, in a process where Django's backend runs on psycopg2."""
    pg_config = request.config.getoption("--history-track-pg-config")
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", __file__,
            f"--history-track-install={request.config.getoption('--history-track-install')}"]
    if pg_config:
        args.append(f"--history-track-pg-config={pg_config}")
    done = subprocess.run(args, env={**os.environ, "HISTORY_TRACK_TEST_DJANGO_DRIVER": "psycopg2"},
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    assert " failed" not in done.stdout and " passed" in done.stdout and " skipped" in done.stdout
