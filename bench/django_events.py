#!/usr/bin/env python3
"""One object's history across models through Django's Events: time and plan.

    python3 bench/django_events.py [--tables 10] [--rows 10000] [--updates 9] [--lookups 50]
                                   [--unpushed] [--pg-config PATH]

Starts a temporary PostgreSQL server (fsync off), tracks --tables tables of
--rows rows, each row inserted then updated --updates times: with the
defaults 10 tables x 10,000 rows x 10 events = 1,000,000 events. Django is
configured in this process with one model per table; then, for --lookups
random objects (medians, milliseconds):

* ``Events.objects.tracks(obj)``: the object's events with data, diff and
  context (history_events(tbl, key) on its table only);
* ``Events.objects.filter(pgh_obj_model=..., pgh_obj_id=...)``: the same
  through a plain filter, which is pushed down the same way;
* ``obj.events.all()``: the event model over the event table (no diff);
* with --unpushed, once: the same filter written as a Q object, which is not
  pushed down and so reads every event table (what a UNION of all event
  tables costs; pghistory's Events reads that way).

Then the plans of one ``tracks()`` lookup (auto_explain at NOTICE level,
nested statements, those that read an event table), and the event tables
that lookup scanned (pg_stat_xact_user_tables).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def build(conn: Any, tables: int, rows: int, updates: int) -> None:
    for t in range(tables):
        name = f"bench_t{t}"
        conn.execute(
            f"CREATE TABLE {name} (id bigint PRIMARY KEY, status text NOT NULL,"
            " amount numeric(12,2) NOT NULL, note text)"
        )
        conn.execute(f"SELECT track_table('{name}')")
        conn.execute(
            f"INSERT INTO {name} SELECT i, 'new', i %% 1000, 'row ' || i FROM generate_series(1, %s) AS i", [rows]
        )
        for u in range(updates):
            conn.execute(f"UPDATE {name} SET amount = amount + 1, status = %s", [f"s{u}"])
        conn.execute(f"VACUUM ANALYZE {name}_event")


def configure(params: dict[str, Any], tables: int) -> list[Any]:
    import django
    from django.conf import settings

    settings.configure(
        SECRET_KEY="bench",
        USE_TZ=True,
        INSTALLED_APPS=["history_track.django"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": params["dbname"],
                "HOST": params["host"],
                "PORT": params["port"],
                "USER": params["user"],
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    from django.db import models

    from history_track.django.models import event_model

    out = []
    for t in range(tables):
        meta = type("Meta", (), {"app_label": "history_track", "db_table": f"bench_t{t}", "managed": False})
        model = type(
            f"BenchT{t}",
            (models.Model,),
            {
                "__module__": __name__,
                "Meta": meta,
                "id": models.BigIntegerField(primary_key=True),
                "status": models.TextField(),
                "amount": models.DecimalField(max_digits=12, decimal_places=2),
                "note": models.TextField(null=True),
            },
        )
        event_model(model)
        out.append(model)
    return out


def timed(fn: Any, runs: list[Any]) -> tuple[float, int]:
    times, count = [], 0
    for arg in runs:
        start = time.perf_counter()
        count = len(fn(arg))
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--updates", type=int, default=9)
    parser.add_argument("--lookups", type=int, default=50)
    parser.add_argument("--unpushed", action="store_true", help="also time the filter that reads every table, once")
    parser.add_argument("--pg-config")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "python"))
    os.environ.setdefault("HISTORY_TRACK_SOURCE", str(ROOT))
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from history_track.install import create_extension
    from history_track.server import TemporaryServer

    with TemporaryServer(pg_config=args.pg_config, postgres_args=TemporaryServer.POSTGRES_ARGS) as server:
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench_events")
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        start = time.perf_counter()
        with psycopg.connect(server.conninfo("bench_events"), autocommit=True) as conn:
            create_extension(conn)
            build(conn, args.tables, args.rows, args.updates)
            total = sum(
                conn.execute(f"SELECT count(*) FROM bench_t{t}_event").fetchone()[0]  # type: ignore[index]
                for t in range(args.tables)
            )
        print(
            f"PostgreSQL {version}; {args.tables} tracked tables, {total:,} events "
            f"({args.rows:,} rows x {args.updates + 1} events per table), built in {time.perf_counter() - start:.0f} s"
        )

        tracked = configure(conninfo_to_dict(server.conninfo("bench_events")), args.tables)
        from django.db import connection, transaction
        from django.db.models import Q

        from history_track.django.models import Events

        rng = random.Random(18)
        objs = [
            tracked[rng.randrange(args.tables)].objects.get(pk=rng.randint(1, args.rows)) for _ in range(args.lookups)
        ]
        list(Events.objects.tracks(objs[0]))  # warm-up (plans, catalog caches)
        figures = {
            "Events.objects.tracks(obj)": timed(lambda o: list(Events.objects.tracks(o)), objs),
            "Events.objects.filter(pgh_obj_model=, pgh_obj_id=)": timed(
                lambda o: list(Events.objects.filter(pgh_obj_model=o._meta.label, pgh_obj_id=o.pk)), objs
            ),
            "obj.events.all() (event model, no diff)": timed(lambda o: list(o.events.all()), objs),
        }
        if args.unpushed:
            figures["Events.objects.filter(Q(...)) (every table read)"] = timed(
                lambda o: list(Events.objects.filter(Q(pgh_obj_model=o._meta.label) & Q(pgh_obj_id=o.pk))), objs[:1]
            )
        print(f"\n{'one object history, median of ' + str(args.lookups) + ' lookups':<56}{'ms':>9}{'events':>8}")
        for name, (ms, count) in figures.items():
            print(f"{name:<56}{ms:>9.2f}{count:>8}")

        # The plan of one lookup: every statement it runs, nested ones too.
        notices: list[str] = []
        raw = connection.connection
        raw.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        scans = (
            "SELECT relname::text, seq_scan, COALESCE(idx_scan, 0) FROM pg_stat_xact_user_tables"
            " WHERE relname LIKE 'bench_t%%_event' ORDER BY relname"
        )
        with transaction.atomic():
            with connection.cursor() as cur:
                # (pg_stat_xact_ counts may hold earlier transactions' scans not
                # yet flushed: the difference across the lookup is its own.)
                cur.execute(scans)
                before = {name: (seq, idx) for name, seq, idx in cur.fetchall()}
                cur.execute("LOAD 'auto_explain'")
                cur.execute("SET LOCAL auto_explain.log_min_duration = 0")
                cur.execute("SET LOCAL auto_explain.log_nested_statements = on")
                cur.execute("SET LOCAL auto_explain.log_analyze = on")
                cur.execute("SET LOCAL auto_explain.log_timing = off")
                cur.execute("SET LOCAL auto_explain.log_level = notice")
            events = list(Events.objects.tracks(objs[0]))
            with connection.cursor() as cur:
                cur.execute("RESET auto_explain.log_min_duration")
                cur.execute(scans)
                scanned = [
                    (name, seq - before.get(name, (0, 0))[0], idx - before.get(name, (0, 0))[1])
                    for name, seq, idx in cur.fetchall()
                    if (seq, idx) != before.get(name, (0, 0))
                ]
        # (The catalog lookups history_events() makes are left out: those that read an event table are shown.)
        print(
            f"\nPlans of Events.objects.tracks({objs[0]._meta.label} {objs[0].pk}) ({len(events)} events),"
            f" of the {len(notices)} statements it ran those that read an event table:"
        )
        for notice in notices:
            if re.search(r" on bench_t\d+_event ", notice):
                print(re.sub(r"^", "    ", notice, flags=re.M))
        print("Event tables scanned (relname, seq_scan, idx_scan):", scanned)
    return 0


if __name__ == "__main__":
    sys.exit(main())
