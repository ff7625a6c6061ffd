"""The history-track command (also python -m history_track)."""

from __future__ import annotations

import argparse
import decimal
import functools
import json
import sys
import time
from typing import Any, Sequence

import psycopg
from psycopg.types.json import set_json_loads

from . import api
from ._resources import version
from .install import InstallError, create_extension, install_files
from .server import ServerError, TemporaryServer


def _json(value: Any) -> str:
    """JSON for the terminal; numbers read as Decimal print as they are stored (25.00)."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _print_events(evs: list[api.Event], out: Any) -> None:
    headers = ["pgh_id", "label", "operation", "obj_id", "context", "diff"]
    rows = [
        [
            str(e.id), e.label, e.operation, _json(e.obj_id),
            _json(e.context) if e.context is not None else "",
            "  ".join(f"{k}: {_json(v[0])} -> {_json(v[1])}" for k, v in sorted((e.diff or {}).items())),
        ]
        for e in evs
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line.rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)


def _print_rows(rows: list[dict[str, Any]], out: Any) -> None:
    if not rows:
        print("(no rows)", file=out)
        return
    headers = list(rows[0])
    cells = [[str(r[h]) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip(), file=out)


DEMO_SETUP = """
CREATE TABLE orders (
    id     integer PRIMARY KEY,
    item   text    NOT NULL,
    amount numeric(10,2) NOT NULL,
    status text    NOT NULL DEFAULT 'new'
);
"""


def cmd_demo(args: argparse.Namespace) -> int:
    out = sys.stdout
    started = time.monotonic()
    print(f"history_track {version()}: starting a temporary PostgreSQL server ...", file=out)
    with TemporaryServer(pg_config=args.pg_config) as server:
        print(f"  PostgreSQL {server.installation.version} on port {server.port}"
              f"{' (running as OS user ' + server.run_as + ')' if server.run_as else ''}", file=out)
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            # Numbers in JSON as Decimal, so 25.00 prints as 25.00.
            set_json_loads(functools.partial(json.loads, parse_float=decimal.Decimal), conn)
            create_extension(conn)
            conn.execute(DEMO_SETUP)
            event_table = api.track_table(conn, "orders")
            print(f"\nSELECT track_table('orders');  -- events go to {event_table}\n", file=out)
            story = [
                ({"user": "alice", "request": "POST /orders"},
                 ["INSERT INTO orders VALUES (1, 'teapot', 25.00), (2, 'cups', 12.50)"]),
                ({"user": "bob", "request": "POST /orders/1/pay"},
                 ["UPDATE orders SET status = 'paid' WHERE id = 1"]),
                ({"user": "alice", "request": "PATCH /orders/2"},
                 ["UPDATE orders SET amount = 10.00 WHERE id = 2",
                  "UPDATE orders SET status = status"]),
                ({"user": "carol", "request": "DELETE /orders/2"},
                 ["DELETE FROM orders WHERE id = 2"]),
            ]
            before = None
            for context, statements in story:
                with conn.transaction():
                    conn.execute("SELECT set_history_context(%s::jsonb)", [json.dumps(context)])
                    for stmt in statements:
                        conn.execute(stmt)
                        print(f"  [{context['user']:>5}] {stmt}", file=out)
                if before is None:
                    before = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
            print("\nSELECT * FROM history_events();  -- every event, with what it changed;"
                  " UPDATE ... SET status = status wrote nothing\n", file=out)
            _print_events(api.history(conn), out)
            print("\nSELECT * FROM history_as_of(NULL::orders, <after the first request>);\n", file=out)
            assert before is not None
            _print_rows(api.as_of(conn, "orders", before), out)
    print(f"\nDone in {time.monotonic() - started:.1f}s; the temporary server and its files are gone.",
          file=out)
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    if not args.no_files:
        for path in install_files(args.pg_config):
            print(f"installed {path}")
    if args.dsn:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            installed = create_extension(conn, schema=args.schema)
            print(f"CREATE EXTENSION history_track: version {installed}")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(version())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="history-track",
        description="Row history for PostgreSQL, recorded by triggers.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True)

    demo = sub.add_parser("demo", help="track a table on a temporary server and show its history",
                          description="Start a temporary PostgreSQL server, track an orders table, "
                                      "make a few changes with context, print the events, clean up.")
    demo.add_argument("--pg-config", help="pg_config of the PostgreSQL to use (default: on PATH)")
    demo.set_defaults(func=cmd_demo)

    install = sub.add_parser("install", help="install the extension's files (and CREATE EXTENSION)",
                             description="Write history_track's control file and SQL scripts into the "
                                         "share/extension directory of a PostgreSQL installation; "
                                         "with --dsn, also run CREATE EXTENSION in that database.")
    install.add_argument("--pg-config", help="pg_config of the target installation (default: on PATH)")
    install.add_argument("--dsn", help="connection string of a database to CREATE EXTENSION in")
    install.add_argument("--schema", help="schema for the public API (default: the first in search_path)")
    install.add_argument("--no-files", action="store_true", help="only run CREATE EXTENSION")
    install.set_defaults(func=cmd_install)

    ver = sub.add_parser("version", help="print the extension version", description="Print the version.")
    ver.set_defaults(func=cmd_version)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InstallError as exc:
        print(f"history-track: error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    except ServerError as exc:
        print(f"history-track: error: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        diag = exc.diag
        print(f"history-track: error: {diag.message_primary or exc} (SQLSTATE {exc.sqlstate})", file=sys.stderr)
        if diag.message_hint:
            print(f"hint: {diag.message_hint}", file=sys.stderr)
        return 1
