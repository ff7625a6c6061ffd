"""Tracking declared on the model (``@track``) and Q conditions, end to end:
a small Django project written into a temporary directory, its models.py
rewritten step by step, ``makemigrations`` / ``migrate`` run as the commands
(a subprocess per step: models cannot be reloaded in one process), the
written operations read back, the trackers and events read from the server."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from history_track import api

PYTHON_DIR = Path(__file__).resolve().parent.parent / "python"

SETTINGS = """\
import json, os
_db = json.loads(os.environ["DECLARE_TEST_DB"])
SECRET_KEY = "test"
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "history_track.django", "catalog"]
DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": _db["dbname"],
                         "HOST": _db["host"], "PORT": _db["port"], "USER": _db["user"]}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
"""

HEADER = """\
from django.db import models
from django.db.models import F, Q

from history_track.django import Changed, Tracker, track
"""

# The model, undecorated; {decorator} is put in front of it.
PRODUCT = """
{decorator}
class Product(models.Model):
    name = models.CharField(max_length=100)
    status = models.CharField(max_length=20, default="draft", db_column="Status")
    price = models.DecimalField(max_digits=10, decimal_places=2, default=0)

    class Meta:
        db_table = "Catalog Product"
"""

PUBLISHED = 'Tracker("published", operations=["update"], condition=Changed("status") & Q(new__status="published"))'
PUBLISHED_SQL = """(OLD."Status" IS DISTINCT FROM NEW."Status") AND (NEW."Status" = 'published')"""
# As the extension stores it: PostgreSQL's deparsed text of the condition it checked.
PUBLISHED_STORED = (
    """((((old)."Status")::text IS DISTINCT FROM ((new)."Status")::text)"""
    """ AND (((new)."Status")::text = 'published'::text))"""
)
SHOWN = (
    'Tracker("published", operations=["update"], '
    'condition=Changed("status") & Q(new__status__in=["published", "featured"]) & ~Q(new__price__lt=F("old__price")))'
)
SHOWN_SQL = (
    """(OLD."Status" IS DISTINCT FROM NEW."Status") AND (NEW."Status" = 'published' OR NEW."Status" = 'featured')"""
    """ AND (NOT (NEW."price" < OLD."price"))"""
)

SHOWN_STORED = (
    """((((old)."Status")::text IS DISTINCT FROM ((new)."Status")::text)"""
    """ AND ((((new)."Status")::text = 'published'::text) OR (((new)."Status")::text = 'featured'::text))"""
    """ AND (NOT ((new).price < (old).price)))"""
)


class Project:
    """A Django project in a directory, run against one database."""

    def __init__(self, root: Path, dsn: str) -> None:
        self.root = root
        self.dsn = dsn
        params = conninfo_to_dict(dsn)
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "settings",
            "PYTHONPATH": os.pathsep.join([str(root), str(PYTHON_DIR)]),
            "DECLARE_TEST_DB": json.dumps({k: params.get(k) for k in ("dbname", "host", "port", "user")}),
        }
        (root / "catalog" / "migrations").mkdir(parents=True)
        (root / "settings.py").write_text(SETTINGS)
        (root / "catalog" / "__init__.py").write_text("")
        (root / "catalog" / "migrations" / "__init__.py").write_text("")

    def models(self, body: str) -> None:
        (self.root / "catalog" / "models.py").write_text(HEADER + textwrap.dedent(body))

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"django {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def makemigrations(self, name: str) -> list[tuple[str, list[Any], dict[str, Any]]]:
        """Run makemigrations; the operations of the migration it wrote, deconstructed."""
        self.run("makemigrations", "catalog", "--name", name)
        (path,) = (self.root / "catalog" / "migrations").glob(f"*_{name}.py")
        return operations_of(path)

    def migration_text(self, name: str) -> str:
        (path,) = (self.root / "catalog" / "migrations").glob(f"*_{name}.py")
        return path.read_text()

    def assert_no_changes(self) -> None:
        done = self.run("makemigrations", "--check", "--dry-run", check=False)
        assert (done.returncode, done.stdout.strip()) == (0, "No changes detected"), done.stdout + done.stderr


def migration_of(path: Path) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102  (a file makemigrations wrote)
    return namespace["Migration"]


def operations_of(path: Path) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """The operations of a migration file, as (class name, args, kwargs)."""
    out = []
    for operation in migration_of(path).operations:
        name, args, kwargs = operation.deconstruct()
        out.append((name.rsplit(".", 1)[-1], list(args), kwargs))
    return out


@pytest.fixture
def project(tmp_path: Path, history_track_server: Any) -> Iterator[Project]:
    """A plain database, as a Django project starts with: the history_track app's
    own migration creates the extension (in both of the suite's install modes)."""
    name = f"declare_{next(_databases)}"
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield Project(tmp_path / "site", history_track_server.conninfo(name))
    with psycopg.connect(history_track_server.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


_databases = itertools.count(1)


def trackers(dsn: str) -> list[tuple[str, str, list[str], str | None]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return sorted((t.table_name, t.label, t.operations, t.condition) for t in api.trackers(conn))


def execute(dsn: str, *statements: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def events(dsn: str, table: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [(e.label, e.operation, e.diff) for e in api.history(conn, table)]


# -- conditions compiled (no database) ----------------------------------------

COMPILE_SCRIPT = """
import json, sys
import django
django.setup()
from decimal import Decimal
from django.db.models import F, Q
from history_track.django import Changed
from history_track.django.conditions import compile_condition, ConditionError
from catalog.models import Product
out = []
for source in json.loads(sys.stdin.read()):
    try:
        out.append(["ok", compile_condition(Product, eval(source))])
    except Exception as exc:
        out.append([type(exc).__name__, str(exc)])
print(json.dumps(out))
"""


def compile_all(project: Project, sources: list[str]) -> list[list[str]]:
    project.models(PRODUCT.format(decorator=""))
    (project.root / "compile_conditions.py").write_text(COMPILE_SCRIPT)
    done = subprocess.run(
        [sys.executable, "compile_conditions.py"],
        cwd=project.root,
        env=project.env,
        input=json.dumps(sources),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_q_conditions_compile_to_sql_text(project: Project) -> None:
    cases = {
        'Q(new__status="paid")': """NEW."Status" = 'paid'""",
        'Q(old__status__df=F("new__status"))': 'OLD."Status" IS DISTINCT FROM NEW."Status"',
        'Changed("status", "price")': """(OLD."Status" IS DISTINCT FROM NEW."Status") OR (OLD."price" IS DISTINCT FROM NEW."price")""",
        'Q(new__status__ne="x") | ~Q(old__price__gte=10)': """(NEW."Status" <> 'x') OR (NOT (OLD."price" >= 10))""",
        'Q(new__price__gt=F("old__price"), new__price__lte=Decimal("99.5"))': (
            """(NEW."price" > OLD."price") AND (NEW."price" <= '99.5')"""
        ),
        "Q(new__price__lt=1.5) & Q(new__id__in=[1, 2]) & Q(new__name__isnull=True)": (
            """(NEW."price" < 1.5) AND (NEW."id" = 1 OR NEW."id" = 2) AND (NEW."name" IS NULL)"""
        ),
        "Q(new__name__isnull=False, new__status=None)": """(NEW."name" IS NOT NULL) AND (NEW."Status" IS NULL)""",
        'Q(new__name__iexact="Ab")': """lower(NEW."name") = lower('Ab')""",
        'Q(new__name__startswith="50%_off\\\\")': r"""NEW."name" LIKE E'50\\%\\_off\\\\%'""",
        'Q(new__name__icontains="x") | Q(new__name__endswith="y")': (
            """(NEW."name" ILIKE '%x%') OR (NEW."name" LIKE '%y')"""
        ),
        "Q(new__status__in=[])": "FALSE",
        'Q(new__status__nd=F("old__status"))': 'NEW."Status" IS NOT DISTINCT FROM OLD."Status"',
        # Hostile values stay literals.
        """Q(new__name="it's")""": """NEW."name" = 'it''s'""",
        """Q(new__name="a\\\\'; DROP TABLE x; --")""": r"""NEW."name" = E'a\\''; DROP TABLE x; --'""",
        'Q(new__name="$$ $q$")': """NEW."name" = '$$ $q$'""",
        "'NEW.status = 1'": "NEW.status = 1",
        # Errors, raised where the condition is compiled (makemigrations).
        'Q(new__name="a\\x00b")': "ConditionError: PostgreSQL text cannot contain NUL (\\x00): 'a\\x00b'",
        'Q(new__name__regex="a")': (
            "ConditionError: condition key 'new__name__regex': lookup 'regex' is not supported in a tracker "
            "condition; supported: exact, iexact, ne, df, nd, gt, gte, lt, lte, isnull, startswith, endswith, "
            "contains, istartswith, iendswith, icontains, in"
        ),
        'Q(status="paid")': (
            "ConditionError: condition key 'status' must name old__<field> or new__<field> "
            "(the row before or after the write) of catalog.Product"
        ),
        'Q(new__colour="red")': "ConditionError: condition key 'new__colour': catalog.Product has no field 'colour'",
        'Q(new__name=F("name"))': (
            "ConditionError: F() 'name' must name old__<field> or new__<field> "
            "(the row before or after the write) of catalog.Product"
        ),
        'Q(new__name__startswith=F("old__name"))': (
            "ConditionError: a pattern lookup takes a string, not an F() reference"
        ),
        "Q(new__name=object())": "ConditionError: cannot write object value",
        'Q(new__name="a") ^ Q(new__name="b")': (
            "ConditionError: the XOR connector is not supported in a tracker condition (use & and |)"
        ),
        "Changed()": "ConditionError: Changed() takes at least one field name",
    }
    results = compile_all(project, list(cases))
    for (source, expected), (kind, text) in zip(cases.items(), results):
        if expected.startswith("ConditionError: "):
            assert kind == "ConditionError", (source, kind, text)
            assert text.startswith(expected.removeprefix("ConditionError: ")), (source, text)
        else:
            assert (kind, text) == ("ok", expected), source


# -- makemigrations writes the tracking ----------------------------------------


def test_decorator_lifecycle_makemigrations_migrate_and_back(project: Project) -> None:
    dsn = project.dsn
    table = '"Catalog Product"'
    project.models(PRODUCT.format(decorator=""))
    assert [op[0] for op in project.makemigrations("initial")] == ["CreateModel"]

    # Decorating the model writes TrackModel operations, the Q condition as SQL text.
    project.models(PRODUCT.format(decorator=f"@track(Tracker(), {PUBLISHED})"))
    pending = project.run("makemigrations", "--check", "--dry-run", check=False)
    assert pending.returncode == 1
    assert pending.stdout.splitlines()[-2:] == ["    + Track history of catalog.Product",
        "    + Track tracker 'published' of catalog.Product"]
    assert project.makemigrations("track") == [
        ("TrackModel", ["catalog.Product"], {"declared": True}),
        (
            "TrackModel",
            ["catalog.Product"],
            {"label": "published", "operations": ["update"], "condition": PUBLISHED_SQL, "declared": True},
        ),
    ]
    assert 'condition=\'(OLD."Status" IS DISTINCT FROM NEW."Status") AND (NEW."Status" = \\\'published\\\')\'' in (
        project.migration_text("track")
    )
    (path,) = (project.root / "catalog" / "migrations").glob("0002_track.py")
    assert migration_of(path).dependencies == [("catalog", "0001_initial"), ("history_track", "0001_initial")]
    project.assert_no_changes()
    project.run("migrate")
    assert trackers(dsn) == [
        (table, "delete", ["delete"], None),
        (table, "insert", ["insert"], None),
        (table, "published", ["update"], PUBLISHED_STORED),
        (table, "update", ["update"], None),
    ]
    execute(
        dsn,
        """INSERT INTO "Catalog Product" (id, name, "Status", price) VALUES (1, 'lamp', 'draft', 10)""",
        """UPDATE "Catalog Product" SET price = 12 WHERE id = 1""",
        """UPDATE "Catalog Product" SET "Status" = 'published' WHERE id = 1""",
        """UPDATE "Catalog Product" SET "Status" = 'published', price = 11 WHERE id = 1""",
    )
    first = [
        (
            "insert",
            "INSERT",
            {"id": [None, 1], "name": [None, "lamp"], "Status": [None, "draft"], "price": [None, Decimal("10.00")]},
        ),
        ("update", "UPDATE", {"price": [Decimal("10.00"), Decimal("12.00")]}),
        ("published", "UPDATE", {"Status": ["draft", "published"]}),
        ("update", "UPDATE", {"Status": ["draft", "published"]}),
        ("update", "UPDATE", {"price": [Decimal("12.00"), Decimal("11.00")]}),
    ]
    assert events(dsn, table) == first

    # Changing a tracker's options: that tracker untracked (old options) and tracked again.
    project.models(PRODUCT.format(decorator=f"@track(Tracker(), {SHOWN})"))
    assert project.makemigrations("shown") == [
        (
            "UntrackModel",
            ["catalog.Product"],
            {"label": "published", "operations": ["update"], "condition": PUBLISHED_SQL},
        ),
        (
            "TrackModel",
            ["catalog.Product"],
            {"label": "published", "operations": ["update"], "condition": SHOWN_SQL, "declared": True},
        ),
    ]
    project.assert_no_changes()
    project.run("migrate")
    assert trackers(dsn) == [
        (table, "delete", ["delete"], None),
        (table, "insert", ["insert"], None),
        (table, "published", ["update"], SHOWN_STORED),
        (table, "update", ["update"], None),
    ]
    execute(
        dsn,
        """UPDATE "Catalog Product" SET "Status" = 'featured', price = 10 WHERE id = 1""",  # cheaper: not shown
        """UPDATE "Catalog Product" SET "Status" = 'published', price = 10 WHERE id = 1""",  # shown
    )
    second = [
        ("update", "UPDATE", {"Status": ["published", "featured"], "price": [Decimal("11.00"), Decimal("10.00")]}),
        ("published", "UPDATE", {"Status": ["featured", "published"]}),
        ("update", "UPDATE", {"Status": ["featured", "published"]}),
    ]
    assert events(dsn, table) == first + second  # history kept

    # Removing the decorator untracks what it declared; the history stays.
    project.models(PRODUCT.format(decorator=""))
    assert project.makemigrations("untrack") == [
        ("UntrackModel", ["catalog.Product"], {}),
        (
            "UntrackModel",
            ["catalog.Product"],
            {"label": "published", "operations": ["update"], "condition": SHOWN_SQL},
        ),
    ]
    project.assert_no_changes()
    project.run("migrate")
    assert trackers(dsn) == []
    execute(dsn, """UPDATE "Catalog Product" SET price = 1 WHERE id = 1""")
    assert events(dsn, table) == first + second

    # Backwards, one migration at a time.
    project.run("migrate", "catalog", "0003")
    assert [t[1:] for t in trackers(dsn)] == [
        ("delete", ["delete"], None),
        ("insert", ["insert"], None),
        ("published", ["update"], SHOWN_STORED),
        ("update", ["update"], None),
    ]
    project.run("migrate", "catalog", "0002")
    assert [t[1:] for t in trackers(dsn)] == [
        ("delete", ["delete"], None),
        ("insert", ["insert"], None),
        ("published", ["update"], PUBLISHED_STORED),
        ("update", ["update"], None),
    ]
    project.run("migrate", "catalog", "0001")
    assert trackers(dsn) == []
    # And forwards again: tracked again (appending to the same event table), then untracked.
    project.run("migrate", "catalog", "0003")
    execute(dsn, """UPDATE "Catalog Product" SET "Status" = 'draft' WHERE id = 1""")
    project.run("migrate")
    assert trackers(dsn) == []
    assert events(dsn, table) == first + second + [
        ("update", "UPDATE", {"Status": ["published", "draft"], "price": [Decimal("10.00"), Decimal("1.00")]}),
    ]
    project.assert_no_changes()


HAND_WRITTEN = f'''\
from django.db import migrations

from history_track.django.operations import TrackModel


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial"), ("history_track", "0001_initial")]
    operations = [
        TrackModel("catalog.Product"),
        TrackModel("catalog.Product", label="published", operations=["UPDATE"], condition={PUBLISHED_SQL!r}),
    ]
'''


def test_hand_written_track_model_and_the_equivalent_decorator_write_nothing(project: Project) -> None:
    project.models(PRODUCT.format(decorator=""))
    project.makemigrations("initial")
    (project.root / "catalog" / "migrations" / "0002_hand.py").write_text(HAND_WRITTEN)
    # The hand-written trackers are in the migration state: nothing to write,
    # with or without the equivalent decorator (the operations' case aside).
    project.assert_no_changes()
    project.models(PRODUCT.format(decorator=f"@track(Tracker(), {PUBLISHED})"))
    project.assert_no_changes()
    project.run("migrate")
    assert [t[1:] for t in trackers(project.dsn)] == [
        ("delete", ["delete"], None),
        ("insert", ["insert"], None),
        ("published", ["update"], PUBLISHED_STORED),
        ("update", ["update"], None),
    ]

    # The decorator's event model exists and no migration mentions it.
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from catalog.models import ProductEvent as E;"
         " print(E._meta.label, E._meta.db_table, E.is_history_track_event)"],
        cwd=project.root, env=project.env, capture_output=True, text=True, timeout=120,
    )
    assert (done.returncode, done.stdout) == (0, "catalog.ProductEvent Catalog Product_event True\n"), done.stderr
    assert not any("Event" in path.read_text() for path in (project.root / "catalog" / "migrations").glob("0*.py"))

    # A declared tracker replacing a hand-written one's label: untrack, track.
    project.models(PRODUCT.format(decorator=f"@track(Tracker(), {SHOWN})"))
    assert project.makemigrations("shown") == [
        (
            "UntrackModel",
            ["catalog.Product"],
            {"label": "published", "operations": ["update"], "condition": PUBLISHED_SQL},
        ),
        (
            "TrackModel",
            ["catalog.Product"],
            {"label": "published", "operations": ["update"], "condition": SHOWN_SQL, "declared": True},
        ),
    ]
    project.run("migrate")
    project.assert_no_changes()
    # Without the decorator, what makemigrations wrote is untracked; the
    # hand-written default trackers stay (they are the migration's, not the model's).
    project.models(PRODUCT.format(decorator=""))
    assert project.makemigrations("untrack") == [
        (
            "UntrackModel",
            ["catalog.Product"],
            {"label": "published", "operations": ["update"], "condition": SHOWN_SQL},
        ),
    ]
    project.run("migrate")
    project.assert_no_changes()
    assert [t[1:] for t in trackers(project.dsn)] == [
        ("delete", ["delete"], None),
        ("insert", ["insert"], None),
        ("update", ["update"], None),
    ]
    project.run("migrate", "catalog", "0001")
    assert trackers(project.dsn) == []


NOTE = """
@track(
    Tracker(
        "odd",
        operations=["insert"],
        condition=Q(new__text__in=["it's", "back\\\\slash", "$$ $x$ ;--", "50%"]) | Q(new__text__startswith="a_b"),
    ),
    event_model=False,
)
class Note(models.Model):
    text = models.TextField()


class NoteEvent(models.Model):
    # A visible model marked as an event model: left out of migrations.

    is_history_track_event = True
    text = models.TextField()

    class Meta:
        managed = False
        db_table = "catalog_note_event"
"""


def test_hostile_values_are_literals_in_the_migration_and_the_trigger(project: Project) -> None:
    project.models(NOTE)
    ops = project.makemigrations("initial")
    condition = (
        """NEW."text" = 'it''s' OR NEW."text" = E'back\\\\slash' OR NEW."text" = '$$ $x$ ;--'"""
        """ OR NEW."text" = '50%'"""
    )
    assert [(name, kwargs["name"]) for name, _, kwargs in ops[:1]] == [("CreateModel", "Note")]
    assert ops[1:] == [
        (
            "TrackModel",
            ["catalog.Note"],
            {
                "label": "odd",
                "operations": ["insert"],
                "condition": f"""({condition}) OR (NEW."text" LIKE 'a\\\\_b%')""".replace("LIKE 'a", "LIKE E'a"),
                "declared": True,
            },
        )
    ]
    project.run("migrate")
    project.assert_no_changes()
    values = ["it's", "back\\slash", "$$ $x$ ;--", "50%", "a_b c", "axb", "it''s", "back\\\\slash", "50"]
    with psycopg.connect(project.dsn, autocommit=True) as conn:
        for value in values:
            conn.execute('INSERT INTO "catalog_note" (text) VALUES (%s)', [value])
        recorded = [e.data["text"] for e in api.history(conn, "catalog_note")]
    assert recorded == ["it's", "back\\slash", "$$ $x$ ;--", "50%", "a_b c"]


def test_unsupported_lookup_fails_at_makemigrations(project: Project) -> None:
    project.models(PRODUCT.format(decorator='@track(condition=Q(new__name__regex="^a"))'))
    done = project.run("makemigrations", "catalog", check=False)
    assert done.returncode == 1
    assert done.stderr == (
        "CommandError: @track on catalog.Product: condition key 'new__name__regex': lookup 'regex' is not "
        "supported in a tracker condition; supported: exact, iexact, ne, df, nd, gt, gte, lt, lte, isnull, "
        "startswith, endswith, contains, istartswith, iendswith, icontains, in\n"
    )
    assert not list((project.root / "catalog" / "migrations").glob("0*.py"))


PARTIAL = """\
from django.db import migrations

from history_track.django.operations import TrackModel, UntrackModel


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial"), ("history_track", "0001_initial")]
    operations = [
        TrackModel("catalog.Product"),
        UntrackModel("catalog.Product", operations=["delete"]),
    ]
"""


def test_hand_written_untrack_of_some_default_trackers_is_in_the_state(project: Project) -> None:
    project.models(PRODUCT.format(decorator=""))
    project.makemigrations("initial")
    (project.root / "catalog" / "migrations" / "0002_partial.py").write_text(PARTIAL)
    # The state holds the default trackers minus delete: the same as this decorator.
    project.models(PRODUCT.format(decorator='@track(operations=["update", "INSERT"])'))
    project.assert_no_changes()
    # All three declared: the two remaining are replaced by the declared ones.
    project.models(PRODUCT.format(decorator="@track()"))
    assert project.makemigrations("all") == [
        ("UntrackModel", ["catalog.Product"], {"operations": ["insert", "update"]}),
        ("TrackModel", ["catalog.Product"], {"declared": True}),
    ]
    project.run("migrate")
    assert [t[1:3] for t in trackers(project.dsn)] == [("delete", ["delete"]), ("insert", ["insert"]), ("update", ["update"])]
    project.assert_no_changes()


TRACK_SCRIPT = """
import django
django.setup()
from django.db import models
from history_track.django import Tracker, track, trackers_of

class Meta:
    app_label = "catalog"

def attempt(make):
    try:
        make()
        print("ok")
    except Exception as exc:
        print(type(exc).__name__ + ": " + str(exc))

attempt(lambda: track(Tracker(), label="x"))
attempt(lambda: track(Tracker(), Tracker("update")))
attempt(lambda: track(Tracker(operations=["insert"]), Tracker(operations=["INSERT", "delete"])))
attempt(lambda: track("paid"))
attempt(lambda: Tracker("x", columns="name"))
attempt(lambda: Tracker("x", condition=1))

class Abstract(models.Model):
    class Meta:
        app_label = "catalog"
        abstract = True
attempt(lambda: track()(Abstract))

@track(Tracker("a"), event_model=False)
@track(Tracker(operations=["update"]), event_model=False)
class Stacked(models.Model):
    class Meta:
        app_label = "catalog"
print([(t.label, t.operations) for t in trackers_of(Stacked)])
attempt(lambda: track(Tracker("a"), event_model=False)(Stacked))
"""


def test_track_refuses_what_makemigrations_could_not_write(project: Project) -> None:
    project.models(PRODUCT.format(decorator=""))
    (project.root / "track_script.py").write_text(TRACK_SCRIPT)
    done = subprocess.run(
        [sys.executable, "track_script.py"], cwd=project.root, env=project.env, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    labels_twice = "(Tracker() is the insert, update and delete trackers; give the others their own labels)"
    assert done.stdout.splitlines() == [
        "TypeError: track() takes Tracker objects or one tracker's options, not both",
        f"ValueError: track() declares the tracker label(s) update twice {labels_twice}",
        f"ValueError: track() declares the tracker label(s) insert twice {labels_twice}",
        "TypeError: track() takes Tracker objects, not 'paid'",
        "TypeError: columns takes a list of names, not the string 'name'",
        "TypeError: condition must be SQL text or a Q object, not int",
        "TypeError: track() needs a concrete model; Abstract is abstract or a proxy",
        "[('a', None), (None, ('update',))]",
        f"ValueError: track() declares the tracker label(s) a twice {labels_twice}",
    ]


PRICED = """
@track(Tracker(), Tracker("priced", operations=["update"], changed=["{field}"], condition=Q(new__{field}__gt=10)))
class Product(models.Model):
    name = models.CharField(max_length=100)
    {field} = models.DecimalField(max_digits=10, decimal_places=2, default=0)
"""


def test_renamed_field_untracks_before_and_tracks_after_the_rename(project: Project) -> None:
    dsn = project.dsn
    project.models(PRICED.format(field="price"))
    project.makemigrations("initial")
    project.run("migrate")
    project.models(PRICED.format(field="cost"))
    # Interactive: makemigrations asks whether the field was renamed.
    done = subprocess.run(
        [sys.executable, "-m", "django", "makemigrations", "catalog", "--name", "rename"],
        cwd=project.root, env=project.env, input="y\n", capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (path,) = (project.root / "catalog" / "migrations").glob("0002_rename.py")
    assert operations_of(path) == [
        (
            "UntrackModel",
            ["catalog.Product"],
            {"label": "priced", "operations": ["update"], "condition": 'NEW."price" > 10', "changed": ["price"]},
        ),
        ("RenameField", [], {"model_name": "product", "old_name": "price", "new_name": "cost"}),
        (
            "TrackModel",
            ["catalog.Product"],
            {
                "label": "priced",
                "operations": ["update"],
                "condition": 'NEW."cost" > 10',
                "changed": ["cost"],
                "declared": True,
            },
        ),
    ]
    project.assert_no_changes()
    project.run("migrate")
    execute(dsn, "INSERT INTO catalog_product (id, name, cost) VALUES (1, 'lamp', 5)",
            "UPDATE catalog_product SET cost = 20 WHERE id = 1")
    priced = [("catalog_product", "priced", ["update"], "((new).cost > (10)::numeric)", ["cost"])]
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert [(t.table_name, t.label, t.operations, t.condition, t.changed) for t in api.trackers(conn)
                if t.label == "priced"] == priced
    # Backwards: tracked again with the old names, on the table as it was.
    project.run("migrate", "catalog", "0001")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert [(t.label, t.condition, t.changed) for t in api.trackers(conn) if t.label == "priced"] == [
            ("priced", "((new).price > (10)::numeric)", ["price"])
        ]
        execute(dsn, "UPDATE catalog_product SET price = 30 WHERE id = 1")
        assert [(e.label, e.diff) for e in api.history(conn, "catalog_product")] == [
            # The event table followed the column back to its old name.
            ("insert", {"id": [None, 1], "name": [None, "lamp"], "price": [None, Decimal("5.00")]}),
            ("priced", {"price": [Decimal("5.00"), Decimal("20.00")]}),
            ("update", {"price": [Decimal("5.00"), Decimal("20.00")]}),
            ("priced", {"price": [Decimal("20.00"), Decimal("30.00")]}),
            ("update", {"price": [Decimal("20.00"), Decimal("30.00")]}),
        ]
