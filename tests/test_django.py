"""history_track.django against a real Django project (tests/django_project)
on the temporary server: requests through the middleware (autocommit and
ATOMIC_REQUESTS), bulk writes, raw SQL, a management command, migrations and
reading history from models."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

import django
from django.conf import settings

PROJECT = Path(__file__).resolve().parent / "django_project"
TEMPLATE = "django_shop_template"
_names = itertools.count(1)


DRIVER = os.environ.get("HISTORY_TRACK_TEST_DJANGO_DRIVER", "psycopg")   # see project_settings


def _configure(server: Any) -> None:
    params = conninfo_to_dict(server.conninfo(TEMPLATE))
    sys.path.insert(0, str(PROJECT))
    from project_settings import settings_for   # chooses the driver
    settings.configure(**settings_for(params["host"], params["port"], params["user"], TEMPLATE))
    django.setup()


@pytest.fixture(scope="module")
def project(history_track_server: Any) -> Iterator[Any]:
    """Django configured for the server; the project migrated into a template database.
    Once per session: other Django test modules use this fixture too
    (``from test_django import db, project``), and Django is configured once."""
    from django.core.management import call_command
    from django.db import connections

    if settings.configured:
        yield history_track_server
        return
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as conn:
        # A plain database: the history_track app's own migration creates the extension.
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    _configure(history_track_server)
    call_command("migrate", verbosity=0)
    connections["default"].close()
    yield history_track_server


@pytest.fixture
def db(project: Any) -> Iterator[str]:
    """A fresh copy of the migrated database, used by Django's default connection."""
    from django.db import connections

    name = f"django_shop_{next(_names)}"
    with psycopg.connect(project.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE)))
    default = connections["default"]
    default.close()
    default.settings_dict["NAME"] = name
    default.settings_dict["ATOMIC_REQUESTS"] = False
    yield project.conninfo(name)
    default.close()
    default.settings_dict["NAME"] = TEMPLATE


def history(obj: Any) -> list[tuple[Any, ...]]:
    """operation, label, context, diff of each event of obj (oldest first)."""
    from history_track.django import events
    return [(e.operation, e.label, e.context, e.diff) for e in events(obj)]


def context_ids(obj: Any) -> list[Any]:
    from history_track.django import events
    return [e.context_id for e in events(obj)]


def make_order(total: str = "10.00", **kw: Any) -> Any:
    from shop.models import Order
    return Order.objects.create(total=Decimal(total), **kw)


def login(client: Any) -> Any:
    from django.contrib.auth.models import User
    user = User.objects.create_user("alice")
    client.force_login(user)
    return user


# -- requests -------------------------------------------------------------------

def test_request_in_autocommit_mode_carries_user_url_and_method(db):
    from django.test import Client
    client = Client()
    user = login(client)
    order = make_order()
    response = client.post(f"/orders/{order.pk}/pay/")
    assert response.status_code == 200
    ctx = {"user": user.pk, "url": f"/orders/{order.pk}/pay/", "method": "POST"}
    assert history(order) == [
        ("INSERT", "insert", None, {"id": [None, order.pk], "customer_id": [None, None], "status": [None, "new"],
                                    "total": [None, Decimal("10.00")], "note": [None, ""]}),
        ("UPDATE", "paid", ctx, {"status": ["new", "paid"]}),
        ("UPDATE", "update", ctx, {"status": ["new", "paid"]}),
        ("UPDATE", "update", ctx, {"note": ["", "paid online"]}),
    ]
    # Autocommit: each save() was its own transaction, so two context ids
    # (the tracker and default events of one statement share one).
    ids = context_ids(order)
    assert ids[0] is None and ids[1] == ids[2] and ids[2] != ids[3] and ids[3] is not None


def test_request_with_atomic_requests_shares_one_context(db):
    from django.db import connections
    from django.test import Client
    connections["default"].settings_dict["ATOMIC_REQUESTS"] = True
    client = Client()
    order = make_order()
    assert client.post(f"/orders/{order.pk}/pay/").status_code == 200
    ctx = {"user": None, "url": f"/orders/{order.pk}/pay/", "method": "POST"}
    assert [h[:3] for h in history(order)] == [
        ("INSERT", "insert", None), ("UPDATE", "paid", ctx), ("UPDATE", "update", ctx), ("UPDATE", "update", ctx)]
    ids = context_ids(order)
    assert ids[1] == ids[2] == ids[3] is not None   # one transaction, one context


@pytest.mark.parametrize("atomic", [False, True], ids=["autocommit", "atomic_requests"])
def test_bulk_update_bulk_create_and_raw_sql(db, atomic):
    from django.db import connections
    from django.test import Client
    from shop.models import Order
    connections["default"].settings_dict["ATOMIC_REQUESTS"] = atomic
    client = Client()
    old = [make_order("5.00"), make_order("6.00", status="paid")]

    ids = client.post("/orders/create/").json()["ids"]
    created = list(Order.objects.filter(pk__in=ids).order_by("pk"))
    ctx = {"user": None, "url": "/orders/create/", "method": "POST"}
    assert [(h[0], h[2]) for o in created for h in history(o)] == [("INSERT", ctx)] * 3

    client.post("/orders/cancel-new/")
    ctx = {"user": None, "url": "/orders/cancel-new/", "method": "POST"}
    for o in [old[0], *created]:
        assert history(o)[-1] == ("UPDATE", "update", ctx, {"status": ["new", "cancelled"]})
    assert len(history(old[1])) == 1   # paid: not touched

    client.post(f"/orders/{old[1].pk}/discount/")
    assert history(old[1])[-1] == ("UPDATE", "update", {"user": None, "url": f"/orders/{old[1].pk}/discount/",
                                                        "method": "POST"}, {"total": [Decimal("6.00"), Decimal("5.00")]})


def test_failing_view_under_atomic_requests_records_nothing(db):
    from django.db import connections
    from django.test import Client
    connections["default"].settings_dict["ATOMIC_REQUESTS"] = True
    client = Client(raise_request_exception=False)
    order = make_order()
    assert client.post(f"/orders/{order.pk}/fail/").status_code == 500
    order.refresh_from_db()
    assert order.status == "new" and len(history(order)) == 1


def test_extra_context_from_the_setting(db, settings_override=None):
    from django.test import Client, override_settings
    order = make_order()
    with override_settings(HISTORY_TRACK_CONTEXT="test_django_helpers.request_id"):
        sys.modules.setdefault("test_django_helpers", _helpers_module())
        Client(headers={"X-Request-Id": "r-42"}).post(f"/orders/{order.pk}/discount/")
    assert history(order)[-1][2] == {"user": None, "url": f"/orders/{order.pk}/discount/", "method": "POST",
                                     "request_id": "r-42"}


def _helpers_module() -> Any:
    import types
    mod = types.ModuleType("test_django_helpers")
    mod.request_id = lambda request: {"request_id": request.headers.get("X-Request-Id")}  # type: ignore[attr-defined]
    return mod


def test_subclassed_middleware_adds_to_the_context(db):
    from django.test import RequestFactory
    from history_track.django.middleware import HistoryContextMiddleware

    class Tenant(HistoryContextMiddleware):
        def get_context(self, request):
            return {**super().get_context(request), "tenant": "acme"}

    order = make_order()

    def view(request):
        order.status = "packed"
        order.save()
        from django.http import HttpResponse
        return HttpResponse()

    Tenant(view)(RequestFactory().put("/anything/"))
    assert history(order)[-1][2] == {"user": None, "url": "/anything/", "method": "PUT", "tenant": "acme"}


# -- context() outside requests ----------------------------------------------------

def test_management_command_and_nested_context(db):
    from django.core.management import call_command
    from shop.models import Order
    call_command("import_orders")
    first, second = Order.objects.order_by("pk")
    assert history(first) == [("INSERT", "insert", {"job": "nightly-import"},
                               {"id": [None, first.pk], "customer_id": [None, None], "status": [None, "new"],
                                "total": [None, Decimal("10.00")], "note": [None, ""]})]
    assert history(second)[0][2] == {"job": "nightly-import", "batch": 2}


@pytest.mark.parametrize("atomic", [False, True], ids=["autocommit", "atomic"])
def test_nesting_merges_and_leaving_restores(db, atomic):
    import contextlib

    from django.db import transaction
    from history_track.django import context, current_context
    a, b, c, d = (make_order() for _ in range(4))
    block = transaction.atomic() if atomic else contextlib.nullcontext()
    with block:
        with context(who="outer", step=1):
            a.status = "a"; a.save()
            with context(step=2, extra=True):
                assert current_context() == {"who": "outer", "step": 2, "extra": True}
                b.status = "b"; b.save()
            c.status = "c"; c.save()
        d.status = "d"; d.save()
    assert current_context() is None
    assert [history(o)[-1][2] for o in (a, b, c, d)] == [
        {"who": "outer", "step": 1}, {"who": "outer", "step": 2, "extra": True}, {"who": "outer", "step": 1}, None]


def test_context_entered_inside_a_transaction_applies_at_once(db):
    from django.db import transaction
    from history_track.django import context
    a, b, c = (make_order() for _ in range(3))
    with transaction.atomic():
        a.status = "x"; a.save()            # opens the transaction, no context yet
        with context(job="late"):
            b.status = "x"; b.save()
        c.status = "x"; c.save()
    assert [history(o)[-1][2] for o in (a, b, c)] == [None, {"job": "late"}, None]


def test_decorator_on_a_function_and_values_django_encodes(db):
    import uuid
    from history_track.django import context
    order = make_order()
    token = uuid.UUID("12345678-1234-5678-1234-567812345678")

    @context(job="reprice", token=token, at=datetime(2026, 1, 2, 3, 4, 5), amount=Decimal("1.50"))
    def reprice() -> None:
        order.total = Decimal("9.00")
        order.save()

    reprice()
    assert history(order)[-1][2] == {"job": "reprice", "token": str(token), "at": "2026-01-02T03:04:05",
                                     "amount": "1.50"}


def test_failed_autocommit_write_rolls_back_and_the_connection_works(db):
    from django.db import IntegrityError, connection
    from history_track.django import context
    from shop.models import Order
    order = make_order()
    with context(job="dup"):
        with pytest.raises(IntegrityError):
            Order.objects.create(pk=order.pk, total=Decimal("1.00"))
        order.status = "after"
        order.save()
    assert connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert [h[:3] for h in history(order)] == [("INSERT", "insert", None), ("UPDATE", "update", {"job": "dup"})]


def test_writes_outside_any_context_have_none(db):
    order = make_order()
    order.status = "x"
    order.save()
    assert [h[2] for h in history(order)] == [None, None]


def test_core_package_does_not_import_django():
    code = "import sys, history_track; import history_track.api, history_track.cli; print('django' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- migrations ---------------------------------------------------------------------

def test_migrations_declare_the_trackers(db):
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT table_name::text, event_table::text, label, operations, condition "
                            "FROM history_trackers").fetchall()
    assert rows == [
        ('shop."Orders"', 'shop."Orders_event"', "insert", ["insert"], None),
        ('shop."Orders"', 'shop."Orders_event"', "update", ["update"], None),
        ('shop."Orders"', 'shop."Orders_event"', "delete", ["delete"], None),
        ('shop."Orders"', 'shop."Orders_event"', "paid", ["update"],   # as PostgreSQL prints it
         "((((old).status)::text IS DISTINCT FROM 'paid'::text) AND (((new).status)::text = 'paid'::text))"),
        ("shop_customer", "shop_customer_event", "insert", ["insert"], None),
        ("shop_customer", "shop_customer_event", "update", ["update"], None),
        ("shop_customer", "shop_customer_event", "delete", ["delete"], None),
        ("shop_orderline", "shop_orderline_event", "insert", ["insert"], None),
        ("shop_orderline", "shop_orderline_event", "update", ["update"], None),
        ("shop_orderline", "shop_orderline_event", "delete", ["delete"], None),
    ]
    with psycopg.connect(db) as conn:
        # exclude=["email"] (a field name) left the email column out; 0003's
        # AddField reached the event table, its AlterField the column type,
        # 0004's RenameField the column's name.
        cols = dict(conn.execute(
            "SELECT attrelid::regclass::text || '.' || attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid IN ('shop_customer_event'::regclass, 'shop.\"Orders_event\"'::regclass) "
            "AND attnum > 0 AND NOT attisdropped AND attname NOT LIKE 'pgh%'").fetchall())
    assert cols == {"shop_customer_event.id": "bigint", "shop_customer_event.full_name": "character varying(100)",
                    'shop."Orders_event".id': "bigint", 'shop."Orders_event".status': "character varying(40)",
                    'shop."Orders_event".total': "numeric(10,2)", 'shop."Orders_event".customer_id': "bigint",
                    'shop."Orders_event".note': "text"}


def test_makemigrations_sees_no_change_and_sqlmigrate_shows_the_call(db):
    import io

    from django.core.management import call_command
    out = io.StringIO()
    call_command("makemigrations", "shop", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
    out = io.StringIO()
    call_command("sqlmigrate", "shop", "0002", stdout=out)
    assert "SELECT public.track_table('\"shop\".\"Orders\"'::regclass, label => NULL" in out.getvalue()
    assert "condition => 'OLD.status IS DISTINCT FROM ''paid'' AND NEW.status = ''paid'''" in out.getvalue()


def test_migrating_back_untracks_and_keeps_history_then_forward_appends(db):
    from django.core.management import call_command
    from django.db import connection
    from shop.models import Customer
    customer = Customer.objects.create(full_name="Ann")
    call_command("migrate", "shop", "0001", verbosity=0)
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM history_trackers").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM shop_customer_event").fetchone() == (1,)
    with connection.cursor() as cur:     # not tracked now (and the column is "name" again)
        cur.execute("UPDATE shop_customer SET name = 'Ann B'")
    call_command("migrate", "shop", verbosity=0)
    customer.full_name = "Ann C"
    customer.save()
    assert [(h[0], h[3]) for h in history(customer)] == [
        ("INSERT", {"id": [None, customer.pk], "full_name": [None, "Ann"]}),
        ("UPDATE", {"full_name": ["Ann", "Ann C"]}),   # the diff spans the untracked gap
    ]


def test_track_model_options_map_field_names_and_reverse_only_its_trackers(db):
    from django.db import connection
    from django.db.migrations.state import ProjectState
    from history_track.django.operations import TrackModel, UntrackModel
    from django.db.migrations.loader import MigrationLoader
    state = MigrationLoader(connection).project_state()
    op = TrackModel("shop.Order", label="big", operations=["insert"], condition="NEW.total > 100",
                    changed=None)
    name, args, kwargs = op.deconstruct()
    assert (name, args, kwargs) == ("TrackModel", ["shop.Order"],
                                    {"label": "big", "operations": ["insert"], "condition": "NEW.total > 100"})
    with connection.schema_editor() as editor:
        op.database_forwards("shop", editor, state, state)
    with connection.schema_editor() as editor:
        TrackModel("shop.Order", label="watch", operations=["update"], changed=["customer"]).database_forwards(
            "shop", editor, state, state)
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT changed::text[] FROM history_trackers WHERE label = 'watch'").fetchone() == (
            ["customer_id"],)
    with connection.schema_editor() as editor:
        op.database_backwards("shop", editor, state, state)
        UntrackModel("shop.Order", label="watch").database_forwards("shop", editor, state, state)
    with psycopg.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT label FROM history_trackers WHERE table_name = "
                                           "'shop.\"Orders\"'::regclass").fetchall()] == [
            "insert", "update", "delete", "paid"]
    assert isinstance(ProjectState, type)


def test_track_model_errors_are_the_extensions(db):
    from django.db import connection, utils
    from django.db.migrations.loader import MigrationLoader
    from history_track.django.operations import TrackModel
    state = MigrationLoader(connection).project_state()
    with pytest.raises(utils.ProgrammingError) as err, connection.schema_editor() as editor:
        TrackModel("shop.Order", label="bad", condition="NEW.nope = 1").database_forwards("shop", editor, state, state)
    cause = err.value.__cause__   # the driver's error: psycopg 3 names its code sqlstate, psycopg2 pgcode
    assert (getattr(cause, "sqlstate", None) or cause.pgcode) == "42P01"   # "missing FROM-clause entry for table new"
    assert str(err.value).startswith('invalid condition for tracker "bad" on table shop."Orders"')
    with pytest.raises(ValueError, match="app_label.ModelName"):
        TrackModel("Order")


# -- reading ------------------------------------------------------------------------

def test_events_of_a_model_as_of_and_revert(db):
    from django.utils import timezone
    from history_track.django import as_of, context, events, revert
    from shop.models import Order
    a, b = make_order("1.00"), make_order("2.00")
    before = timezone.now()
    a.status = "paid"; a.save()
    b_pk = b.pk
    b.delete()
    table = events(Order)
    assert [(e.operation, e.label, e.obj_id) for e in table] == [
        ("INSERT", "insert", a.pk), ("INSERT", "insert", b_pk), ("UPDATE", "paid", a.pk),
        ("UPDATE", "update", a.pk), ("DELETE", "delete", b_pk)]
    assert [e.obj_id for e in events(Order, last=1)] == [b_pk]
    then = list(as_of(Order, before))
    assert [(o.pk, o.status, o.total) for o in then] == [(a.pk, "new", Decimal("1.00")), (b_pk, "new", Decimal("2.00"))]
    assert all(isinstance(o, Order) for o in then)
    assert [o.status for o in as_of(Order, before, key=a.pk)] == ["new"]
    with context(reason="undo"):
        assert revert(a, before) == 1
    a.refresh_from_db()
    assert a.status == "new"
    assert history(a)[-1] == ("UPDATE", "revert", {"reason": "undo"}, {"status": ["paid", "new"]})


def test_composite_keys(db):
    from history_track.django import events
    from shop.models import OrderLine
    order = make_order()
    line = OrderLine.objects.create(order=order, line_no=1, sku="tea", quantity=1)
    OrderLine.objects.create(order=order, line_no=2, sku="cup", quantity=2)
    line.quantity = 3
    line.save()
    got = events(line)
    assert [(e.operation, e.obj_id, e.diff) for e in got][1:] == [("UPDATE", [order.pk, 1], {"quantity": [1, 3]})]
    assert got[0].obj_id == [order.pk, 1]


def test_numbers_come_back_exactly(db):
    """numeric values in data and diff are Decimals with their scale, not floats
    (12.50 stays 12.50; a float would be 12.5 and 0.1 + 0.2 would drift)."""
    from history_track.django import events
    order = make_order("12.50")
    order.total = Decimal("10.10")
    order.save()
    first, last = events(order)
    assert repr(first.data["total"]) == "Decimal('12.50')"
    assert repr(last.diff) == "{'total': [Decimal('12.50'), Decimal('10.10')]}"


def test_unsaved_instance_is_refused(db):
    from history_track.django import events
    from shop.models import Order
    with pytest.raises(ValueError, match="save it first"):
        events(Order(total=1))


def test_manual_event_merges_its_context_over_the_active_one(db):
    from history_track.django import context, events, record
    order = make_order()
    with context(user=7, via="admin"):
        pgh_id = record(order, "emailed", via="mailer", to="ann@example.com")
    last = events(order)[-1]
    assert (last.id, last.operation, last.label, last.context, last.data["status"]) == (
        pgh_id, "MANUAL", "emailed", {"user": 7, "via": "mailer", "to": "ann@example.com"}, "new")


def test_server_side_binding(db):
    from django.db import connection, transaction
    from history_track.django import context
    connection.close()
    connection.settings_dict["OPTIONS"]["server_side_binding"] = True
    try:
        a, b = make_order(), make_order()
        with context(job="ssb"):
            a.status = "x"; a.save()                 # autocommit
            with transaction.atomic():
                b.status = "x"; b.save()
        assert [history(o)[-1][2] for o in (a, b)] == [{"job": "ssb"}, {"job": "ssb"}]
    finally:
        connection.close()
        del connection.settings_dict["OPTIONS"]["server_side_binding"]


def test_async_function_decorated_reaches_writes_made_in_threads(db):
    import asyncio

    from asgiref.sync import sync_to_async
    from history_track.django import context
    order = make_order()

    @context(job="async")
    async def work() -> None:
        order.status = "async"
        await sync_to_async(order.save)()   # Django's thread for sync ORM calls: another connection

    asyncio.run(work())
    assert history(order)[-1][2] == {"job": "async"}



# -- the context at the moment of each write ------------------------------------------

def contexts(obj: Any) -> list[Any]:
    """The context of each default-tracker event of obj, oldest first."""
    from history_track.django import events
    return [e.context for e in events(obj) if e.label in ("insert", "update", "delete")]


def test_a_savepoint_rolled_back_does_not_take_the_context_with_it(db):
    """The block's setting was made inside the savepoint; the write after the
    rollback still carries it (the issue's case, and atomic() failing inside)."""
    from django.db import transaction
    from history_track.django import context
    from shop.models import Order
    with transaction.atomic():
        sid = transaction.savepoint()
        with context(job="import"):
            make_order(note="rolled back")
            transaction.savepoint_rollback(sid)
            kept = make_order(note="kept")
    with transaction.atomic(), context(job="retry"):
        try:
            with transaction.atomic():
                make_order(note="failed")
                raise RuntimeError
        except RuntimeError:
            pass
        after = make_order(note="after")
    assert sorted(Order.objects.values_list("note", flat=True)) == ["after", "kept"]
    assert contexts(kept) == [{"job": "import"}]
    assert contexts(after) == [{"job": "retry"}]


@pytest.mark.parametrize("atomic", [False, True], ids=["autocommit", "atomic_requests"])
def test_the_user_a_view_authenticates_is_the_one_recorded(db, atomic):
    """Django REST framework authenticates inside the view (a token here), after
    the middleware ran: the writes record that user, read when they happen."""
    from django.contrib.auth.models import User
    from django.db import connections
    from django.test import Client
    connections["default"].settings_dict["ATOMIC_REQUESTS"] = atomic
    bob = User.objects.create_user("bob")
    order = make_order()
    response = Client().post(f"/api/orders/{order.pk}/pay/", headers={"Authorization": "Token bob"})
    assert response.status_code == 200 and response.json() == {"id": order.pk, "user": bob.pk}
    assert contexts(order)[-1] == {"user": bob.pk, "url": f"/api/orders/{order.pk}/pay/", "method": "POST"}


def test_context_called_plainly_adds_to_the_open_block_or_warns(db):
    from history_track.django import context, current_context
    order = make_order()
    with context(job="import"):
        context(step=1)                       # adds to the open block ...
        order.status = "a"; order.save()
        with context(batch=2):
            context(step=2)                   # ... the innermost one, until it ends
            order.status = "b"; order.save()
        order.status = "c"; order.save()
        assert current_context() == {"job": "import", "step": 1}
    order.status = "d"; order.save()
    assert contexts(order)[1:] == [{"job": "import", "step": 1}, {"job": "import", "step": 2, "batch": 2},
                                   {"job": "import", "step": 1}, None]
    with pytest.warns(RuntimeWarning, match="reaches no write"):
        context(step=3)                       # no block open: never silently nothing
    assert current_context() is None


@pytest.mark.parametrize("atomic", [False, True], ids=["autocommit", "atomic"])
def test_values_that_look_like_sql_are_recorded_exactly(db, atomic):
    """The metadata is a dollar-quoted literal whose tag it cannot contain or end."""
    import contextlib

    from django.db import transaction
    from history_track.django import context
    order = make_order()
    hostile = {"q": "'; DROP TABLE shop.\"Orders\"; --", "tag": "$htc$ $htc1$", "tail": "x$htc", "pct": "100%s %%",
               "nl": "a\nb\\", "unicode": "ä\u2028"}
    for key, value in hostile.items():
        with context(**{key: value}), (transaction.atomic() if atomic else contextlib.nullcontext()):
            order.status = key
            order.save()
    assert contexts(order)[1:] == [{k: v} for k, v in hostile.items()]


def test_a_value_that_cannot_be_encoded_fails_where_it_is_given(db):
    from history_track.django import context
    with pytest.raises(TypeError, match="not JSON serializable"):
        with context(job=object()):
            pass


def test_callable_values_are_read_when_each_statement_is_sent(db):
    from django.db import transaction
    from history_track.django import context
    order = make_order()
    step = iter(range(1, 10))
    with transaction.atomic(), context(job="import", step=lambda: next(step)):
        order.status = "a"; order.save()
        order.status = "b"; order.save()
    assert [c["step"] for c in contexts(order)[1:]] == [1, 2]   # one statement each: the UPDATE


def test_a_driver_that_is_not_installed_is_looked_for_once(db, monkeypatch):
    """Without psycopg2, the wrapper's check for it must not search the import path
    again for every statement (a failed import is not remembered: it cost each
    statement in a context half a millisecond); writes still carry the context."""
    import builtins

    import importlib

    from history_track.django import context
    context_module = importlib.import_module("history_track.django.context")  # (the package's context is the class)
    attempts = []
    real_import = builtins.__import__

    def without_psycopg2(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("psycopg2"):
            attempts.append(name)
            raise ImportError(f"No module named {name!r} (hidden by the test)")
        return real_import(name, *args, **kwargs)

    order = make_order()
    context_module._psycopg2_cursor.cache_clear()
    monkeypatch.setattr(builtins, "__import__", without_psycopg2)
    try:
        assert [context_module._is_psycopg2(object()) for _ in range(3)] == [False] * 3
        with context(job="import"):
            for status in ("a", "b"):
                order.status = status
                order.save()
    finally:
        monkeypatch.undo()
        context_module._psycopg2_cursor.cache_clear()
    assert attempts == ["psycopg2.extensions"]
    assert [c["job"] for c in contexts(order)[1:]] == ["import"] * 2


@pytest.mark.parametrize("atomic", [False, True], ids=["autocommit", "atomic"])
def test_executemany_carries_the_context(db, atomic):
    """executemany cannot share a query string with the setting: it goes first."""
    import contextlib

    from django.db import connection, transaction
    from history_track.django import context
    a, b = make_order(), make_order()
    with context(job="many"), (transaction.atomic() if atomic else contextlib.nullcontext()):
        with connection.cursor() as cur:
            cur.executemany('UPDATE shop."Orders" SET note = %s WHERE id = %s', [("x", a.pk), ("y", b.pk)])
    assert [contexts(o)[-1] for o in (a, b)] == [{"job": "many"}] * 2


def test_statements_that_cannot_run_in_a_transaction_block_are_sent_alone(db):
    from django.db import connection
    from history_track.django import context
    with context(job="maintenance"), connection.cursor() as cur:
        cur.execute('CREATE INDEX CONCURRENTLY orders_note ON shop."Orders" (note)')
        cur.execute('VACUUM shop."Orders"')
        cur.execute("SELECT 1 AS one WHERE %s LIKE %s", ["50%", "5_%"])   # % in the text and in values
        assert cur.fetchone() == (1,)
        cur.execute("SELECT '100%' AS pct")
        assert cur.fetchone() == ("100%",)


def test_procedures_carry_the_context_and_one_that_commits_still_runs(db):
    """CALL gets the context too. A procedure that commits cannot run in a query
    string of two statements: it runs alone, without context, and says so."""
    from django.db import connection, transaction
    from history_track.django import context
    from shop.models import Order
    order = make_order()
    with connection.cursor() as cur:
        cur.execute('''CREATE PROCEDURE shop.set_status(p_id bigint, p_status text, p_commit boolean)
                       LANGUAGE plpgsql AS $$
                       BEGIN
                           UPDATE shop."Orders" SET status = p_status WHERE id = p_id;
                           IF p_commit THEN COMMIT; END IF;
                       END $$''')
    with context(job="proc"), connection.cursor() as cur:
        cur.execute("CALL shop.set_status(%s, 'a', false)", [order.pk])
        with pytest.warns(RuntimeWarning, match="procedure that commits"):
            cur.execute("CALL shop.set_status(%s, 'b', true)", [order.pk])
        with transaction.atomic():
            cur.execute("CALL shop.set_status(%s, 'c', false)", [order.pk])
    assert Order.objects.get(pk=order.pk).status == "c"
    assert [(e[3]["status"][1], e[2]) for e in history(order) if e[1] == "update"] == [
        ("a", {"job": "proc"}), ("b", None), ("c", {"job": "proc"})]


def test_a_failed_statement_in_a_savepoint_does_not_take_the_context_with_it(db):
    """The transaction failed, so Django's ROLLBACK TO SAVEPOINT runs in a failed
    transaction: the setting made inside the savepoint is gone, and is sent again.
    A callable value that queries is not called while the transaction is failed."""
    from django.db import IntegrityError, connection, transaction
    from history_track.django import context
    from shop.models import Order
    existing = make_order()

    def tenant() -> int:
        with connection.cursor() as cur:
            cur.execute("SELECT 42")
            return int(cur.fetchone()[0])

    with transaction.atomic(), context(job="import", tenant=tenant):
        try:
            with transaction.atomic():
                make_order(note="rolled back")                 # the setting is made in the savepoint
                Order.objects.create(pk=existing.pk, total=1)  # duplicate key: the transaction fails
        except IntegrityError:
            pass
        after = make_order(note="after")
    assert contexts(after) == [{"job": "import", "tenant": 42}]


def test_a_transaction_opened_behind_the_wrappers_back_gets_the_context(db):
    """With AUTOCOMMIT off, a statement the wrapper does not see (a health check's
    SELECT 1 on the driver's connection) may open the next transaction: the
    connection forgot what it set when Django committed."""
    from django.db import connection
    from history_track.django import context
    connection.close()
    connection.settings_dict["AUTOCOMMIT"] = False
    try:
        with context(url="/poll"):
            first = make_order()
            connection.commit()
            connection.connection.cursor().execute("SELECT 1")   # opens the transaction unseen
            second = make_order()
            connection.commit()
        assert [contexts(o) for o in (first, second)] == [[{"url": "/poll"}]] * 2
    finally:
        connection.close()
        connection.settings_dict["AUTOCOMMIT"] = True


def test_composed_and_bytes_statements_carry_the_context(db):
    from django.db import connection
    from history_track.django import context
    sql = __import__("psycopg2.sql" if DRIVER == "psycopg2" else "psycopg.sql", fromlist=["sql"])
    a, b = make_order(), make_order()
    with context(job="composed"), connection.cursor() as cur:
        cur.execute(sql.SQL("UPDATE {} SET note = %s WHERE id = %s").format(sql.Identifier("shop", "Orders")),
                    ["x", a.pk])
        cur.execute(f'UPDATE shop."Orders" SET note = \'y\' WHERE id = {int(b.pk)}'.encode())
    assert [contexts(o)[-1] for o in (a, b)] == [{"job": "composed"}] * 2


def test_plain_calls_and_blocks_of_one_object_keep_each_others_keys(db):
    from history_track.django import context, current_context
    with context(request=1):
        later = context(x=1)        # a plain call, for now: x is added
        context(y=2)
        assert current_context() == {"request": 1, "x": 1, "y": 2}
        with later:                 # taken back and made a block: y stays
            assert current_context() == {"request": 1, "y": 2, "x": 1}
        assert current_context() == {"request": 1, "y": 2}


def test_one_context_object_entered_by_tasks_at_once(db):
    """JOB = context(...) at module level, entered by two tasks that leave in the
    order they entered (not last in, first out)."""
    import asyncio

    from history_track.django import context, current_context
    job = context(job="sync")
    seen: list[Any] = []

    async def first(a_in: asyncio.Event, b_in: asyncio.Event, a_out: asyncio.Event) -> None:
        with job:
            a_in.set()
            await b_in.wait()
            seen.append(("a", current_context()))
        seen.append(("a", current_context()))
        a_out.set()

    async def second(a_in: asyncio.Event, b_in: asyncio.Event, a_out: asyncio.Event) -> None:
        await a_in.wait()
        with job, context(part=2):
            b_in.set()
            await a_out.wait()
            seen.append(("b", current_context()))
        seen.append(("b", current_context()))

    async def main() -> None:
        events = asyncio.Event(), asyncio.Event(), asyncio.Event()
        await asyncio.gather(first(*events), second(*events))

    asyncio.run(main())
    assert seen == [("a", {"job": "sync"}), ("a", None), ("b", {"job": "sync", "part": 2}), ("b", None)]


def test_a_plain_call_is_taken_back_from_the_block_it_went_to(db):
    from history_track.django import context, current_context
    with context(req=1):
        later = context(x=1)  # added to the request's block
        with context(inner=1):
            with later:  # taken back from there, though another block is open
                assert current_context() == {"req": 1, "inner": 1, "x": 1}
            assert current_context() == {"req": 1, "inner": 1}
        assert current_context() == {"req": 1}


def test_plain_calls_cost_the_same_however_many_came_before(db):
    import time

    from history_track.django import context

    def calls(n: int) -> float:
        start = time.perf_counter()
        with context(job="import"):
            for i in range(n):
                context(row=i)
        return time.perf_counter() - start

    calls(1000)  # warm
    small, large = min(calls(2000) for _ in range(3)), min(calls(16000) for _ in range(3))
    assert large / small < 20  # linear: ~8; merging every earlier call again made it ~64


def test_generators_cannot_be_decorated_and_sync_to_async_functions_can(db):
    import asyncio

    from asgiref.sync import sync_to_async
    from history_track.django import context, current_context

    with pytest.raises(TypeError, match="generator function"):

        @context(job="gen")
        def rows() -> Any:
            yield 1

    @context(job="thread")
    @sync_to_async
    def in_a_thread() -> Any:
        return current_context()

    assert asyncio.run(in_a_thread()) == {"job": "thread"}


def test_the_user_is_the_one_the_request_has_when_a_statement_is_sent(db):
    """The middleware's deferred user: the async path's loaded user stands in
    for AuthenticationMiddleware's unloaded one, never for a user set later."""
    from django.contrib.auth.models import AnonymousUser, User
    from django.test import RequestFactory
    from django.utils.functional import SimpleLazyObject
    from history_track.django.middleware import RequestUser

    alice, bob = User.objects.create_user("alice"), User.objects.create_user("bob")
    request = RequestFactory().get("/")
    request.user = SimpleLazyObject(lambda: AnonymousUser())  # as AuthenticationMiddleware sets it
    user = RequestUser(request)
    assert user() is None
    request = RequestFactory().get("/")
    request.user = SimpleLazyObject(lambda: pytest.fail("loaded again"))
    request._acached_user = alice  # what await request.auser() loaded
    user = RequestUser(request)
    assert user() == alice.pk
    request.user = SimpleLazyObject(lambda: bob)  # a token middleware after ours
    assert user() == bob.pk


@pytest.mark.skipif(DRIVER == "psycopg2", reason="server_side_binding is psycopg 3's")
def test_an_interrupted_autocommit_write_leaves_no_transaction_open(db):
    from django.db import connection
    from history_track.django import context

    class Interrupted(BaseException):
        pass

    def interrupt(execute: Any, sql: Any, params: Any, many: bool, ctx: Any) -> Any:
        raise Interrupted

    connection.close()
    connection.settings_dict["OPTIONS"]["server_side_binding"] = True
    try:
        order = make_order()
        with context(job="x"), pytest.raises(Interrupted), connection.execute_wrapper(interrupt):
            order.status = "interrupted"
            order.save()
        assert connection.connection.info.transaction_status == 0  # idle, not in a transaction
    finally:
        connection.close()
        del connection.settings_dict["OPTIONS"]["server_side_binding"]


def test_what_is_only_comments_or_nested_comments_is_sent_as_it_is(db):
    import time

    from django.db import connection, transaction
    from history_track.django import context
    from history_track.django.context import _as_is, _head

    def outcome(sql: str) -> Any:
        with connection.cursor() as cur:
            try:
                cur.execute(sql)
            except Exception as exc:
                return type(exc).__name__
            return cur.description

    quiet = [outcome(sql) for sql in ("-- only a comment", "/* */", ";")]
    with context(job="maintenance"):
        assert [outcome(sql) for sql in ("-- only a comment", "/* */", ";")] == quiet
        with connection.cursor() as cur:
            cur.execute('/* a /* nested */ comment */ VACUUM shop."Orders"')
            cur.execute('CREATE /* c */ INDEX CONCURRENTLY orders_total ON shop."Orders" (total)')
        order = make_order()
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL transaction_isolation = 'serializable'")  # must come first
            order.status = "serializable"
            order.save()
    assert contexts(order)[-1] == {"job": "maintenance"}
    hostile = "ALTER TABLE t " + "DETACH PARTITION p " * 20000
    start = time.perf_counter()
    assert not _as_is(_head(hostile), hostile)
    assert time.perf_counter() - start < 1.0  # linear in the text, not quadratic


def test_nan_is_refused_where_it_is_given(db):
    from history_track.django import context
    with pytest.raises(ValueError, match="not JSON compliant"):
        context(ratio=float("nan"))



# -- fewer round trips ------------------------------------------------------------------

@pytest.fixture
def proxy(db):
    """Django's default connection through a proxy that counts round trips."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from django.db import connections
    from pgproxy import CountingProxy
    params = conninfo_to_dict(db)
    default = connections["default"]
    default.close()
    saved = dict(default.settings_dict)
    with CountingProxy(params["host"], int(params["port"])) as counting:
        assert os.stat(counting.host).st_mode & 0o777 == 0o700   # its socket: this OS user's only
        default.settings_dict.update(HOST=counting.host, PORT=counting.port,
                                     OPTIONS={**saved["OPTIONS"], "sslmode": "disable", "gssencmode": "disable"})
        try:
            yield counting
        finally:
            default.close()
            default.settings_dict.clear()
            default.settings_dict.update(saved)


def test_a_write_in_a_context_costs_no_extra_round_trip(db, proxy):
    """An autocommit save() with a context is one round trip, as without one;
    so is every statement of a transaction. (Before: three more per autocommit
    write — BEGIN, the setting, COMMIT — and one more per transaction.)"""
    from django.db import transaction
    from history_track.django import context
    order = make_order()

    def save() -> None:
        order.status = f"s{proxy.round_trips}"
        order.save()

    def three_in_a_transaction() -> None:
        with transaction.atomic():
            save(); save(); save()

    save()   # connects
    without = (proxy.trips(save), proxy.trips(three_in_a_transaction))
    with context(user=1):
        within = (proxy.trips(save), proxy.trips(three_in_a_transaction))
    assert without == within == (1, 5)   # BEGIN, three saves, COMMIT
    assert contexts(order)[-4:] == [{"user": 1}] * 4


@pytest.mark.skipif(DRIVER == "psycopg2", reason="server_side_binding is psycopg 3's")
def test_server_side_binding_round_trips_and_a_committing_procedure(db, proxy):
    """Parameters under server_side_binding cannot share a query string: an
    autocommit write pays BEGIN, the setting and COMMIT; a read is sent as it
    is; a procedure that commits still runs (alone, with a warning)."""
    from django.db import connection
    from history_track.django import context
    from shop.models import Order
    connection.close()
    connection.settings_dict["OPTIONS"]["server_side_binding"] = True
    order = make_order()

    def save() -> None:
        order.status = "ssb"
        order.save()

    with context(job="ssb"):
        assert (proxy.trips(save), proxy.trips(lambda: Order.objects.filter(pk=order.pk).count())) == (4, 1)
        with connection.cursor() as cur:
            cur.execute('''CREATE PROCEDURE shop.commit_note(p_id bigint) LANGUAGE plpgsql AS $$
                           BEGIN UPDATE shop."Orders" SET note = 'committed' WHERE id = p_id; COMMIT; END $$''')
            with pytest.warns(RuntimeWarning, match="procedure that commits"):
                cur.execute("CALL shop.commit_note(%s)", [order.pk])
    assert [(e[3], e[2]) for e in history(order)[-2:]] == [
        ({"status": ["new", "ssb"]}, {"job": "ssb"}), ({"note": ["", "committed"]}, None)]


# -- ASGI ---------------------------------------------------------------------------------

def _project_env(db: str, **extra: str) -> dict[str, str]:
    """The environment a process of the test project (uvicorn, a Celery worker) needs."""
    import json
    params = conninfo_to_dict(db)
    package = str(Path(__import__("history_track").__file__).resolve().parents[1])
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "project_settings",
            "PYTHONPATH": os.pathsep.join([str(PROJECT), package, os.environ.get("PYTHONPATH", "")]),
            "HISTORY_TRACK_TEST_DB": json.dumps({"host": params["host"], "port": params["port"],
                                                 "user": params["user"], "name": params["dbname"]}),
            **extra}


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(ready: Any, proc: subprocess.Popen[str], what: str, timeout: float = 60) -> None:
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {proc.communicate()[0]}")
        if ready():
            return
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{what} did not start in {timeout}s: {proc.communicate()[0]}")


def test_async_view_under_an_asgi_server(db):
    """uvicorn serves the project; an async view writes through the async ORM.
    The middleware runs async (Django adapts no handler for it) and the writes
    carry the request's context, the logged-in user and a key added in the view."""
    import http.client

    from django.test import Client
    client = Client()
    user = login(client)
    order = make_order()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--lifespan", "off", "--no-access-log"],
        cwd=PROJECT, env=_project_env(db, HISTORY_TRACK_TEST_DEBUG="1"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def up() -> bool:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
            return True
        except OSError:
            return False
    try:
        _wait_for(up, proc, "uvicorn")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", f"/orders/{order.pk}/apay/",
                     headers={"Cookie": f"sessionid={client.cookies['sessionid'].value}"})
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, body
        conn.request("GET", "/health/", headers={"Cookie": f"sessionid={client.cookies['sessionid'].value}"})
        health = conn.getresponse()
        assert (health.status, health.read(), health.getheader("Vary")) == (200, b'{"ok": true}', None)  # no session read
    finally:
        proc.terminate()
        log = proc.communicate(timeout=30)[0]
    ctx = {"user": user.pk, "url": f"/orders/{order.pk}/apay/", "method": "POST"}
    assert contexts(order)[1:] == [ctx, {**ctx, "step": "note"}]
    import json
    assert json.loads(body)["context"] == ctx   # read in the event loop
    assert "adapted for middleware" not in log, log   # DEBUG logs each adaptation; there is none


# -- Celery ----------------------------------------------------------------------------

@pytest.fixture
def celery_worker(db):
    """redis-server and a Celery worker (prefork, one process) for the test's database."""
    import shutil
    redis = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if redis is None:
        pytest.skip("redis-server is not installed (CI installs it: apt-get install redis-server)")
    import secrets
    import tempfile
    port = _free_port()
    # A password: anyone on the machine could otherwise queue tasks for the worker.
    password = secrets.token_hex(16)
    broker = f"redis://:{password}@127.0.0.1:{port}/0"
    config = Path(tempfile.mkdtemp()) / "redis.conf"   # (not in argv, which ps shows everyone)
    config.write_text(f'port {port}\nbind 127.0.0.1\nsave ""\nappendonly no\nrequirepass {password}\n')
    server = subprocess.Popen([redis, str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    worker = None
    try:
        from shop.celery_app import app
        app.conf.broker_url = app.conf.result_backend = broker
        app.set_current()
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "shop.celery_app", "worker", "--concurrency", "1",
             "--loglevel", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=PROJECT, env=_project_env(db, HISTORY_TRACK_TEST_BROKER=broker),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        _wait_for(lambda: bool(app.control.ping(timeout=0.5)), worker, "the Celery worker")
        yield app
    finally:
        if worker is not None:
            worker.terminate()
            worker.communicate(timeout=60)
        server.terminate()
        server.communicate(timeout=30)
        shutil.rmtree(config.parent)


def test_celery_tasks_run_in_the_context_that_enqueued_them(db, celery_worker):
    import time

    from history_track.django import context
    from shop.models import Order
    from shop.tasks import set_status
    order, other = make_order(), make_order()
    with context(user=7, url="/admin/ship"):
        sent = set_status.delay(order.pk, "shipped")   # which enqueues set_note from the worker
    assert sent.get(timeout=60) == "shipped"
    alone = set_status.delay(other.pk, "packed")      # outside any block
    assert alone.get(timeout=60) == "packed"
    deadline = time.monotonic() + 60
    while Order.objects.get(pk=order.pk).note != "on its way" and time.monotonic() < deadline:
        time.sleep(0.1)
    shipped, noted = contexts(order)[1:]
    assert shipped == {"user": 7, "url": "/admin/ship", "task": "shop.set_status", "task_id": sent.id}
    assert noted.pop("task_id") not in (None, sent.id)
    assert noted == {"user": 7, "url": "/admin/ship", "task": "shop.set_note"}
    assert contexts(other)[1:] == [{"task": "shop.set_status", "task_id": alone.id}]


# -- psycopg2 ------------------------------------------------------------------------

@pytest.mark.skipif(DRIVER == "psycopg2", reason="this is the run on psycopg2")
def test_django_on_psycopg2(request):
    """This module again, in a process where Django's backend runs on psycopg2."""
    pg_config = request.config.getoption("--history-track-pg-config")
    args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", __file__,
            f"--history-track-install={request.config.getoption('--history-track-install')}"]
    if pg_config:
        args.append(f"--history-track-pg-config={pg_config}")
    done = subprocess.run(args, env={**os.environ, "HISTORY_TRACK_TEST_DJANGO_DRIVER": "psycopg2"},
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    assert " failed" not in done.stdout and " passed" in done.stdout


# -- behind a transaction pooler --------------------------------------------------------

@pytest.fixture
def pgbouncer(project, db):
    """PgBouncer in transaction mode with ONE server connection, in front of the
    test's database: every client's transactions take turns on the same server
    session, so anything set for the session would reach the next client."""
    from pooler import pgbouncer as start_pgbouncer

    with start_pgbouncer(project, conninfo_to_dict(db)["dbname"]) as port:
        yield port


def test_behind_a_transaction_pooler(db, pgbouncer):
    """Three threads write through one pooled server connection: two in their
    own context (autocommit saves, an atomic block), one with none. Every
    event carries exactly its writer's context: nothing leaks from one
    client's transaction into another's on the shared server session."""
    import threading

    from django.db import connections, transaction
    from history_track.django import context
    from shop.models import Order

    pooled = connections["pooled"]
    pooled.close()
    pooled.settings_dict["NAME"] = conninfo_to_dict(db)["dbname"]
    pooled.settings_dict["PORT"] = pgbouncer
    orders = {name: [make_order() for _ in range(15)] for name in ("ann", "bob", "none")}
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def work(name: str) -> None:
        try:
            barrier.wait()
            block = context(user=name) if name != "none" else contextlib.nullcontext()
            with block:
                for i, order in enumerate(orders[name]):
                    order.status = f"{name}-{i}"
                    if i % 5 == 4:
                        with transaction.atomic(using="pooled"):
                            order.save(using="pooled")
                    else:
                        order.save(using="pooled")
        except BaseException as exc:   # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    import contextlib
    threads = [threading.Thread(target=work, args=(name,)) for name in orders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    connections["default"].close()
    with psycopg.connect(db) as conn:
        got = conn.execute(
            "SELECT split_part(status, '-', 1), pgh_context FROM shop.\"Orders_event\""
            " WHERE pgh_operation = 'UPDATE' AND pgh_label = 'update' ORDER BY pgh_id").fetchall()
        # All three went through the one server connection PgBouncer has. (The backend of
        # the default connection, closed just above, may take a moment to leave.)
        import time
        deadline = time.monotonic() + 10
        while True:
            (backends,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                       " AND backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone()
            if backends <= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert backends == 1
    assert len(got) == 45
    assert sorted(got, key=lambda r: r[0]) == sorted(
        [("ann", {"user": "ann"})] * 15 + [("bob", {"user": "bob"})] * 15 + [("none", None)] * 15,
        key=lambda r: r[0])
