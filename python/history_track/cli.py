"""The history-track command (also python -m history_track)."""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import psycopg

from . import api, render
from ._resources import version
from .install import (
    InstallError,
    _installed,
    create_extension,
    install_files,
    install_without_extension,
    uninstall,
)
from .server import ServerError, TemporaryServer


class CommandError(RuntimeError):
    """What the user must change: printed as one line and a hint, exit 1."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _print_rows(rows: list[dict[str, Any]], out: Any) -> None:
    if not rows:
        print("(no rows)", file=out)
        return
    headers = list(rows[0])
    cells = [[render.printable(str(r[h])) for h in headers] for r in rows]
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
        print(
            f"  PostgreSQL {server.installation.version} on its Unix socket in {server.socket_dir}"
            f"{' (running as OS user ' + server.run_as + ')' if server.run_as else ''}",
            file=out,
        )
        with psycopg.connect(server.conninfo(), autocommit=True) as conn:
            create_extension(conn)
            conn.execute(DEMO_SETUP)
            event_table = api.track_table(conn, "orders")
            print(f"\nSELECT track_table('orders');  -- events go to {event_table}\n", file=out)
            story = [
                (
                    {"user": "alice", "request": "POST /orders"},
                    ["INSERT INTO orders VALUES (1, 'teapot', 25.00), (2, 'cups', 12.50)"],
                ),
                ({"user": "bob", "request": "POST /orders/1/pay"}, ["UPDATE orders SET status = 'paid' WHERE id = 1"]),
                (
                    {"user": "alice", "request": "PATCH /orders/2"},
                    ["UPDATE orders SET amount = 10.00 WHERE id = 2", "UPDATE orders SET status = status"],
                ),
                ({"user": "carol", "request": "DELETE /orders/2"}, ["DELETE FROM orders WHERE id = 2"]),
            ]
            before = None
            for context, statements in story:
                with conn.transaction():
                    conn.execute(*api.set_context_query(api.api_schema(conn), json.dumps(context)))
                    for stmt in statements:
                        conn.execute(stmt)
                        print(f"  [{context['user']:>5}] {stmt}", file=out)
                if before is None:
                    before = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
            print(
                "\nSELECT * FROM history_events();  -- every event, who, and what it changed;"
                " UPDATE ... SET status = status wrote nothing\n",
                file=out,
            )
            for line in render.timeline(api.history(conn), render.use_colour(args.color, out)):
                print(line, file=out)
            print("\nSELECT * FROM history_as_of(NULL::orders, <after the first request>);\n", file=out)
            assert before is not None
            _print_rows(api.as_of(conn, "orders", before), out)
    print(f"\nDone in {time.monotonic() - started:.1f}s; the temporary server and its files are gone.", file=out)
    print("Your turn: history-track sandbox (a server of your own to try it in, in psql).", file=out)
    return 0


CONNECT_HINT = (
    "say where with --dsn 'host=... port=... dbname=... user=...', or with libpq's "
    "PGHOST, PGPORT, PGDATABASE, PGUSER and PGPASSWORD variables"
)


def _connect(args: argparse.Namespace, *, installed: bool = True) -> psycopg.Connection[Any]:
    """An autocommit connection to --dsn (else libpq's PG* variables); with
    ``installed``, refused with what to do when history_track is not there."""
    try:
        conn = psycopg.connect(args.dsn or "", autocommit=True)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CommandError(
            f"cannot connect to the database: {first.removeprefix('connection failed: ')}", hint=CONNECT_HINT
        ) from None
    if installed and _installed(conn) is None:
        dsn = f"'{args.dsn}'" if args.dsn else "'...'"
        available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'history_track'").fetchone()
        database = conn.info.dbname
        conn.close()
        raise CommandError(
            f'history_track is not installed in database "{database}"',
            hint="run CREATE EXTENSION history_track; in it (the server has the extension's files)"
            if available
            else f"history-track install --dsn {dsn} puts the extension's files into the local PostgreSQL and runs "
            f"CREATE EXTENSION; on managed PostgreSQL: history-track install --no-extension --dsn {dsn}",
        )
    return conn


def cmd_log(args: argparse.Namespace) -> int:
    with _connect(args) as conn, render.Progress("reading history"):
        events = api.history(conn, args.table, key=args.key, since=args.since, last=None if args.all else args.limit)
    if args.json:
        print(render.as_json(events))
        return 0
    lines = render.timeline(events, render.use_colour(args.color, sys.stdout), show_table=args.table is None)
    if not lines:
        lines = ["(no events)"]
    render.page(lines)
    return 0


def _list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def cmd_track(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        label = f"track_table({args.table!r})"
        if args.baseline:
            rows = conn.execute(
                "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s::regclass", [args.table]
            ).fetchone()
            label = f"track_table({args.table!r}, baseline => true): recording about {rows[0] if rows else 0} rows"
        with render.Progress(label):
            event_table = api.track_table(
                conn,
                args.table,
                label=args.label,
                operations=_list(args.operations),
                condition=args.condition,
                changed=_list(args.changed),
                snapshot=args.snapshot,
                columns=_list(args.columns),
                exclude=_list(args.exclude),
                baseline=args.baseline,
            )
        trackers = api.trackers(conn, args.table)
    print(render.printable(f"history of {args.table} goes to {event_table}; its trackers:"))
    rows = [
        {
            "label": t.label,
            "operations": ",".join(t.operations),
            "changed": ",".join(t.changed or []),
            "condition": t.condition or "",
            "snapshot": t.snapshot or "",
        }
        for t in trackers
    ]
    # Label and operations always; the other columns when some tracker has one.
    keep = ["label", "operations", *(k for k in ("changed", "condition", "snapshot") if any(r[k] for r in rows))]
    _print_rows([{k: r[k] for k in keep} for r in rows], sys.stdout)
    return 0


def cmd_untrack(args: argparse.Namespace) -> int:
    with _connect(args) as conn:
        tracked = bool(api.trackers(conn, args.table))
        if not tracked and not args.drop_events:
            raise CommandError(
                f"{args.table} is not tracked: nothing was changed",
                hint="SELECT DISTINCT table_name FROM history_trackers lists the tracked tables",
            )
        if not tracked:
            try:  # untracked earlier, its history kept? (history_events refuses a table without)
                api.history(conn, args.table, last=0)
            except psycopg.errors.ObjectNotInPrerequisiteState:
                raise CommandError(f"{args.table} has no history to drop: it is not tracked") from None
        with render.Progress(f"untrack_table({args.table!r})"):
            api.untrack_table(conn, args.table, label=args.label, drop_events=args.drop_events)
    if args.label:
        print(f"untracked tracker {args.label!r} of {args.table}")
    elif tracked:
        print(f"untracked {args.table}{' and dropped its history' if args.drop_events else ''}")
    else:
        print(f"dropped the history of {args.table} (it was no longer tracked)")
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    if args.no_extension:
        if not args.dsn:
            raise InstallError(
                "--no-extension installs into a database: give --dsn",
                hint="history-track install --no-extension --dsn 'host=... dbname=...'",
            )
        with _connect(args, installed=False) as conn, render.Progress("installing history_track"):
            done = install_without_extension(conn, schema=args.schema or "public")
        print(
            f"installed history_track {done.version} without CREATE EXTENSION: "
            f"the API in schema {done.schema}, internals in schema history_track"
        )
        if not done.event_triggers:
            print(
                "warning: this role may not create event triggers, so ALTER TABLE and DROP TABLE on "
                "tracked tables are not followed (untrack before altering, track again after)",
                file=sys.stderr,
            )
        return 0
    if not args.no_files:
        for path in install_files(args.pg_config):
            print(f"installed {path}")
    if args.dsn:
        with _connect(args, installed=False) as conn:
            installed = create_extension(conn, schema=args.schema)
            print(f"CREATE EXTENSION history_track: version {installed}")
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    with _connect(args, installed=False) as conn:
        removed = uninstall(conn)
    print(
        "DROP EXTENSION history_track"
        if removed == "extension"
        else "removed history_track (installed without the extension); event tables kept"
    )
    return 0


def _psql(server: TemporaryServer) -> str | None:
    """The psql to open on the sandbox: the server installation's, else the one on PATH."""
    own = server.installation.bindir / "psql"
    return str(own) if own.exists() else shutil.which("psql")


def cmd_sandbox(args: argparse.Namespace) -> int:
    err = sys.stderr
    interactive = not args.print_dsn and sys.stdin.isatty() and sys.stdout.isatty()

    # SIGTERM and SIGHUP end the sandbox like Ctrl-C does: the server is removed.
    # (SIGINT too, explicitly: a shell starts a background job with SIGINT
    # ignored, and Python then leaves it ignored.)
    def leave(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, leave)
    print(f"history_track {version()}: starting a throwaway PostgreSQL server ...", file=err, flush=True)
    try:
        with TemporaryServer(pg_config=args.pg_config, database=args.database) as server:
            with psycopg.connect(server.conninfo(), autocommit=True) as conn:
                create_extension(conn)
            dsn = server.conninfo()
            psql = _psql(server) if interactive else None
            where = (
                f"PostgreSQL {server.installation.version}, database {args.database} with history_track "
                f"installed{', running as OS user ' + server.run_as if server.run_as else ''}"
            )
            if psql is not None:
                print(
                    f"{where}. Everything is removed when you leave psql (\\q).\n"
                    f'The tour: README.md, "Five minutes with it" (doc/tour.sql); to connect from another '
                    f'terminal (as this OS user: it listens on its Unix socket only): psql "{dsn}"',
                    file=err,
                    flush=True,
                )
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is psql's
                try:
                    code = subprocess.run([psql, dsn], check=False).returncode
                finally:
                    signal.signal(signal.SIGINT, previous)
            else:
                if interactive:
                    print(
                        "psql was not found (Debian: apt-get install postgresql-client); connect with any client to:",
                        file=err,
                    )
                print(
                    f"{where}; removed when this command ends (Ctrl-C). Its connection string (for this OS user: "
                    "it listens on its Unix socket only):",
                    file=err,
                    flush=True,
                )
                print(dsn, flush=True)
                code = 0
                try:
                    while server.child_process is not None and server.child_process.poll() is None:
                        time.sleep(0.5)
                    raise CommandError(
                        "the sandbox's server stopped unexpectedly", hint=f"its log was {server.log_file}"
                    )
                except KeyboardInterrupt:
                    pass
    except KeyboardInterrupt:
        code = 130
    print("sandbox removed", file=err)
    return code


def cmd_version(args: argparse.Namespace) -> int:
    print(version())
    return 0


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (paragraphs, examples); options aligned like git's."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30, width=min(100, shutil.get_terminal_size().columns))


OVERVIEW = """\
Row history for PostgreSQL, recorded by triggers. These are the history-track commands:

try it (on a temporary PostgreSQL server, removed afterwards)
   demo        Track a table, make changes with context, print its history
   sandbox     A server with history_track for you to try, in psql

record and read history (in the database of --dsn, or of libpq's PG* variables)
   track       Start recording a table's history, or add a named tracker
   untrack     Stop recording it (the history stays unless --drop-events)
   log         Show events, newest last, with who made them and what changed

install into PostgreSQL
   install     Put the extension's files into an installation; CREATE EXTENSION
   uninstall   Remove history_track from a database (history is kept)

   version     Print the version"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="history-track",
        usage="history-track [--version] [--help] <command> [<args>]",
        formatter_class=_Formatter,
        description=OVERVIEW,
        epilog="'history-track <command> --help' tells more about a command.",
    )
    parser.add_argument("--version", action="version", version=f"history-track {version()}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", help=argparse.SUPPRESS)

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name, prog=f"history-track {name}", help=summary, description=description, formatter_class=_Formatter
        )

    demo = command(
        "demo",
        "track a table on a temporary server and show its history",
        "Start a temporary PostgreSQL server, track an orders table, make a few changes with\n"
        "context, print the events and the table as it was, then remove everything.",
    )
    demo.add_argument("--pg-config", metavar="PATH", help="pg_config of the PostgreSQL to use (default: on PATH)")
    demo.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the output (default: when writing to a terminal)",
    )
    demo.set_defaults(func=cmd_demo)

    sandbox = command(
        "sandbox",
        "a throwaway server with history_track, opened in psql",
        "Start a throwaway PostgreSQL server (as the postgres OS user when run as root) with\n"
        "history_track created in a database, and open psql on it. Leaving psql (\\q) stops the\n"
        "server and removes its files. Ctrl-C in psql cancels the statement, as usual.\n"
        "\n"
        "Without a terminal or psql, or with --print-dsn, it prints the connection string on\n"
        "stdout (messages go to stderr) and keeps the server until it is interrupted (Ctrl-C,\n"
        "SIGTERM), for other clients and scripts:\n"
        "\n"
        "    history-track sandbox               # psql on a fresh database: try the README's tour\n"
        "    history-track sandbox --print-dsn   # for other clients: prints the DSN; Ctrl-C ends it",
    )
    sandbox.add_argument("--pg-config", metavar="PATH", help="pg_config of the PostgreSQL to use (default: on PATH)")
    sandbox.add_argument("--database", default="sandbox", metavar="NAME", help="its name (default: sandbox)")
    sandbox.add_argument(
        "--print-dsn", action="store_true", help="do not open psql: print the connection string and wait for Ctrl-C"
    )
    sandbox.set_defaults(func=cmd_sandbox)

    install = command(
        "install",
        "install the extension's files (and CREATE EXTENSION)",
        "Write history_track's control file and SQL scripts into the share/extension directory\n"
        "of a PostgreSQL installation; with --dsn, also run CREATE EXTENSION in that database.\n"
        "On managed PostgreSQL, where no files can be installed, --no-extension runs the same\n"
        "SQL in the database as plain objects.",
    )
    install.add_argument("--pg-config", metavar="PATH", help="pg_config of the target installation (default: on PATH)")
    install.add_argument("--dsn", help="connection string of a database to CREATE EXTENSION in")
    install.add_argument(
        "--schema", help="schema for the public API (default: the first in search_path; public with --no-extension)"
    )
    install.add_argument("--no-files", action="store_true", help="only run CREATE EXTENSION")
    install.add_argument(
        "--no-extension",
        action="store_true",
        help="no files, no CREATE EXTENSION: run the same SQL in the database of --dsn",
    )
    install.set_defaults(func=cmd_install)

    uninstall_cmd = command(
        "uninstall",
        "remove history_track from a database (history is kept)",
        "DROP EXTENSION history_track, or remove an install made with --no-extension.\n"
        "Refused while tables are tracked; event tables are never dropped.",
    )
    uninstall_cmd.add_argument("--dsn", help="connection string (default: libpq's PG* environment variables)")
    uninstall_cmd.set_defaults(func=cmd_uninstall)

    def dsn_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dsn", help="connection string (default: libpq's PG* environment variables)")

    log = command(
        "log",
        "show events with who made them and what they changed",
        "Show history, oldest first: the latest events of a table, or of every table you may\n"
        "read (in time order, each with its table), or with KEY one row's whole timeline,\n"
        "following primary-key changes. Each event shows who (its context) and what changed.\n"
        "Colour on a terminal, plain when piped; long output is paged.\n"
        "\n"
        "    history-track log orders 42           # one row's timeline\n"
        "    history-track log -n 50               # the latest 50 events of every table\n"
        "    history-track log orders --since yesterday --json | jq .",
    )
    log.add_argument("table", nargs="?", help="the tracked table (default: every table)")
    log.add_argument("key", nargs="?", help="a row's primary key: 42, or a JSON array for a composite key")
    log.add_argument(
        "-n", "--limit", type=int, default=20, metavar="N", help="how many of the latest events (default 20)"
    )
    log.add_argument("--all", action="store_true", help="every event, not only the latest")
    log.add_argument("--since", metavar="TIME", help="only events recorded since then (e.g. '2026-01-01', 'yesterday')")
    log.add_argument("--json", action="store_true", help="print the events as a JSON array, for scripts")
    log.add_argument(
        "--color",
        choices=["auto", "always", "never"],
        default="auto",
        help="colour the output (default: when writing to a terminal)",
    )
    dsn_option(log)
    log.set_defaults(func=cmd_log)

    track = command(
        "track",
        "start recording a table's history (track_table)",
        "Call track_table(): without --label, the event table and the default trackers\n"
        "(insert, update, delete); with --label, one more named tracker. Then list the\n"
        "table's trackers.\n"
        "\n"
        "    history-track track orders\n"
        "    history-track track orders --label paid --operations update \\\n"
        "                               --condition \"NEW.status = 'paid'\"",
    )
    track.add_argument("table")
    track.add_argument("--label", help="name a tracker of its own (with its operations and condition)")
    track.add_argument("--operations", metavar="OPS", help="comma-separated subset of insert,update,delete")
    track.add_argument("--condition", metavar="SQL", help="boolean SQL over OLD and NEW")
    track.add_argument("--changed", metavar="COLUMNS", help="comma-separated: record updates only when these changed")
    track.add_argument("--snapshot", choices=["old", "new"], help="which row an update event stores")
    track.add_argument("--columns", metavar="COLUMNS", help="comma-separated columns the event table mirrors")
    track.add_argument("--exclude", metavar="COLUMNS", help="comma-separated columns it leaves out")
    track.add_argument("--baseline", action="store_true", help="also record every row as it is now")
    dsn_option(track)
    track.set_defaults(func=cmd_track)

    untrack = command(
        "untrack",
        "stop recording a table's history (untrack_table)",
        "Call untrack_table(): remove every tracker of the table (its history stays), or\n"
        "the one named by --label; --drop-events also drops the event table, also of a\n"
        "table untracked earlier. A table that is not tracked is an error (exit 1):\n"
        "nothing was changed, perhaps the name is mistyped.",
    )
    untrack.add_argument("table")
    untrack.add_argument("--label", help="remove only this tracker")
    untrack.add_argument("--drop-events", action="store_true", help="also drop the event table and its history")
    dsn_option(untrack)
    untrack.set_defaults(func=cmd_untrack)

    ver = command("version", "print the version", "Print the version of history_track.")
    ver.set_defaults(func=cmd_version)
    return parser


def _message(text: str) -> str:
    """An error message for the terminal: it names tables, columns and values from
    the database, so printable(), and its lines after the first indented (a name
    holding a line feed cannot start a line of its own, "history-track: ...")."""
    return render.printable(text, keep="\n").replace("\n", "\n  ")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # like git: the overview, exit 1
        parser.print_help()
        return 1
    try:
        return int(args.func(args))
    except (CommandError, InstallError) as exc:
        print(_message(f"history-track: error: {exc}"), file=sys.stderr)
        if exc.hint:
            print(_message(f"hint: {exc.hint}"), file=sys.stderr)
        return 1
    except ServerError as exc:
        print(_message(f"history-track: error: {exc}"), file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        diag = exc.diag
        message = diag.message_primary or str(exc).strip().splitlines()[0]
        print(
            render.printable(f"history-track: error: {message}{f' (SQLSTATE {exc.sqlstate})' if exc.sqlstate else ''}"),
            file=sys.stderr,
        )
        if diag.message_detail:
            print(_message(f"detail: {diag.message_detail}"), file=sys.stderr)
        if diag.message_hint:
            print(_message(f"hint: {diag.message_hint}"), file=sys.stderr)
        return 1
