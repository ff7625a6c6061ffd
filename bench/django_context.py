#!/usr/bin/env python3
"""What carrying Django's context costs a write: round trips and time.

    python3 bench/django_context.py [--saves 2000] [--rounds 5] [--latency 0,0.0005]
                                    [--before REV] [--pg-config PATH]

Starts one temporary PostgreSQL server (on its Unix socket), migrates the test
project (tests/django_project: Order is tracked with a default and a
conditional tracker) and measures --saves autocommit ``order.save()`` calls
(one UPDATE each), without a context and inside ``history_track.django.context``,
through bench/pgproxy.py, which counts the round trips (the server's
ReadyForQuery messages) and can hold back every client message by --latency
seconds to stand for a network. Reported per write: round trips, and
microseconds (median over rounds).

With --before REV (a git revision), the same measurement runs with the
history_track package of that revision too; rounds alternate between the two
(each round is a fresh process: one process cannot import two versions), so
the figures compare side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "tests" / "django_project"


def child(db: dict[str, Any], saves: int, latency: float) -> dict[str, Any]:
    """One round, in a process whose history_track is the one under test."""
    sys.path[:0] = [str(PROJECT), str(ROOT / "bench")]
    import django
    from django.conf import settings
    from pgproxy import CountingProxy
    from project_settings import settings_for

    proxy = CountingProxy(db["host"], int(db["port"]), latency=latency)
    config = settings_for(proxy.host, proxy.port, db["user"], db["name"])
    config["DATABASES"]["default"]["OPTIONS"] = {"sslmode": "disable", "gssencmode": "disable"}
    settings.configure(**config)
    django.setup()
    from decimal import Decimal

    from shop.models import Order

    import history_track.django as history

    order = Order.objects.create(total=Decimal("1.00"))
    out: dict[str, Any] = {}
    for name in ("plain", "context", "plain", "context"):  # each twice, the first as warm-up
        block = history.context(user=1, url="/orders/1/pay/", method="POST") if name == "context" else None
        if block is not None:
            block.__enter__()
        trips = proxy.round_trips
        start = time.perf_counter()
        for i in range(saves):
            order.status = f"s{i % 7}"
            order.save()
        seconds = time.perf_counter() - start
        if block is not None:
            block.__exit__(None, None, None)
        out[name] = {"round_trips": (proxy.round_trips - trips) / saves, "us": seconds / saves * 1e6}
    from history_track.django import events

    contexts = [e.context for e in events(order, last=2)]
    out["context_recorded"] = contexts[-1]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saves", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency", default="0,0.0005", help="seconds added per client message, comma-separated")
    parser.add_argument("--before", help="a git revision whose history_track to measure too")
    parser.add_argument("--pg-config")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(child(spec["db"], spec["saves"], spec["latency"])))
        return 0

    sys.path.insert(0, str(ROOT / "python"))
    os.environ.setdefault("HISTORY_TRACK_SOURCE", str(ROOT))
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from history_track.server import TemporaryServer

    versions = {"now": ROOT / "python"}
    scratch = None
    if args.before:
        scratch = Path(tempfile.mkdtemp(prefix="ht_before_"))
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(scratch), args.before], check=True
        )
        versions = {args.before: scratch / "python", **versions}
    try:
        with TemporaryServer(pg_config=args.pg_config, postgres_args=TemporaryServer.POSTGRES_ARGS) as server:
            with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench_django")
                version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            params = conninfo_to_dict(server.conninfo("bench_django"))
            db = {"host": params["host"], "port": params["port"], "user": params["user"], "name": "bench_django"}
            env = {
                **os.environ,
                "HISTORY_TRACK_TEST_DB": json.dumps(db),
                "DJANGO_SETTINGS_MODULE": "project_settings",
                "PYTHONPATH": os.pathsep.join([str(PROJECT), str(ROOT / "python")]),
            }
            subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], env=env, check=True, cwd=PROJECT)
            latencies = [float(x) for x in args.latency.split(",")]
            results: dict[tuple[str, float], list[dict[str, Any]]] = {}
            for n in range(args.rounds):
                order = list(versions.items()) if n % 2 == 0 else list(reversed(versions.items()))
                for latency in latencies:
                    for name, package in order:
                        spec = json.dumps({"db": db, "saves": args.saves, "latency": latency})
                        done = subprocess.run(
                            [sys.executable, __file__, "--child", spec],
                            capture_output=True,
                            text=True,
                            check=False,
                            env={**os.environ, "PYTHONPATH": str(package)},
                        )
                        if done.returncode != 0:
                            sys.exit(f"{name}: {done.stderr}")
                        results.setdefault((name, latency), []).append(json.loads(done.stdout))
            print(
                f"PostgreSQL {version}; {args.saves} autocommit save()s per variant and round, "
                f"{args.rounds} rounds (medians); through a counting proxy, on Unix sockets\n"
            )
            print(f"{'package':>10} {'latency':>8} {'':>8}{'round trips':>13}{'us/save':>10}{'context':>10}")
            for (name, latency), rounds in results.items():
                plain = statistics.median(r["plain"]["us"] for r in rounds)
                for variant in ("plain", "context"):
                    us = statistics.median(r[variant]["us"] for r in rounds)
                    trips = statistics.median(r[variant]["round_trips"] for r in rounds)
                    extra = f"{us / plain:>9.2f}x" if variant == "context" else ""
                    print(f"{name:>10} {latency * 1000:>6.2f}ms {variant:>8}{trips:>13.2f}{us:>10.0f}{extra}")
                print(f"{'':>29}recorded: {rounds[-1]['context_recorded']}")
    finally:
        if scratch is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(scratch)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
