"""The SQL's house rules that a reader relies on (STYLE.md, "SQL"): every
function of history_track pins search_path, except the few that must not (SQL
functions PostgreSQL inlines, and the helpers run once per written statement),
and those name every function and operator by its schema; src/ keeps lines
short enough to read side by side."""

from __future__ import annotations

import re

from conftest import GENERATED, ROOT

# Unpinned, each for a reason written above it in src/: inlined SQL helpers
# (a SET clause stops PostgreSQL inlining them) and the context readers the
# triggers call once per statement (a SET clause costs each write). Only the
# extension's owner may run them, always from a pinned function.
UNPINNED = {
    "_state_labels", "_operations", "_pgh_columns",                               # 20_util: inlined lists
    "_context_id", "_uuid7", "_context_time", "_parse_context", "_context", "_context_json", "_context_label",
    "_context_is_set",  # 30_context
    "_citus_event_id",                                                               # 45_citus: once per event
    "_diff",                                                                         # 70_read: inlined
    "_chain_bytes",                                                                  # 85_protect: inlined
}

# What may stand before "(" unqualified: SQL syntax and type modifiers, not functions.
SYNTAX = {"coalesce", "nullif", "greatest", "least", "exists", "array", "row", "values", "in", "any", "all",
          "not", "and", "or", "select", "then", "else", "when", "case", "return", "if", "bit", "numeric",
          "varchar", "char", "character", "filter", "over", "from", "where", "on", "as", "using"}


def _functions(conn):
    """(name, pinned, source) of every function history_track made: in its
    schema and in the API's (installed as an extension or not), not the
    objects it generates per table."""
    return conn.execute(
        """
        SELECT p.proname::text,
               EXISTS (SELECT FROM unnest(p.proconfig) AS c WHERE c LIKE 'search\\_path=%%'),
               p.prosrc
          FROM pg_proc AS p
         WHERE (p.pronamespace = 'history_track'::regnamespace
                OR p.pronamespace = (SELECT a.pronamespace FROM pg_proc AS a WHERE a.proname = 'track_table'))
           AND p.proname !~ %s
         ORDER BY 1""",
        [GENERATED],
    ).fetchall()


def _code(source: str) -> str:
    """source without comments and string literals (dollar-quoted ones too)."""
    source = re.sub(r"--[^\n]*", " ", source)
    source = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
    source = re.sub(r"(\$\w*\$).*?\1", " ", source, flags=re.S)
    return re.sub(r"[EeUu]?'(?:[^']|'')*'", " ", source)


def test_every_function_pins_search_path_but_the_named_few(history_track_conn):
    unpinned = {name for name, pinned, _ in _functions(history_track_conn) if not pinned}
    assert unpinned == UNPINNED


def test_the_unpinned_name_every_function_and_operator_by_its_schema(history_track_conn):
    found = {}
    for name, pinned, source in _functions(history_track_conn):
        if pinned:
            continue
        code = _code(source)
        code = re.sub(r"OPERATOR\(pg_catalog\.[^)\s]+\)", " ", code)
        code = re.sub(r"::|:=|=>", " ", code)   # casts, PL/pgSQL assignment, named arguments
        code = re.sub(r"\b(ERRCODE|DETAIL|HINT|MESSAGE)\s*=", " ", code)   # RAISE ... USING
        code = re.sub(r"\bAS\s+\w+\s*\(", " ", code, flags=re.I)          # a column alias list
        operators = re.findall(r"[-=<>+*/%|!~^&@#]+", code)
        calls = [c for c in re.findall(r"(?<![\w.\"])([a-z_][a-z0-9_]*)\s*\(", code, flags=re.I)
                 if c.lower() not in SYNTAX]
        if operators or calls:
            found[name] = (operators, calls)
    assert found == {}


def test_source_lines_fit_140_characters():
    long = [f"{path.name}:{n}" for path in sorted((ROOT / "src").glob("*.sql"))
            for n, line in enumerate(path.read_text().splitlines(), 1) if len(line) > 140]
    assert long == []


def test_pinned_functions_write_plain_operators(history_track_conn):
    """OPERATOR(pg_catalog.=) is noise where the path is pinned: no pinned
    function writes it, nor the trigger and condition code generated for a
    table (it stays in the unpinned functions above, the catalog's CHECK
    constraints and a view, parsed once when the extension is made)."""
    conn = history_track_conn
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text) PARTITION BY RANGE (id)")
    conn.execute("CREATE TABLE orders_1 PARTITION OF orders FOR VALUES FROM (0) TO (100)")
    conn.execute("SELECT track_table('orders')")
    conn.execute("SELECT track_table('orders', label => 'paid', condition => $$NEW.status = 'paid'$$)")
    qualified = [name for name, pinned, source in _functions(conn) if pinned and "OPERATOR(" in source]
    generated = conn.execute("""
        SELECT p.proname::text, strpos(p.prosrc, 'OPERATOR(') > 0
          FROM pg_proc AS p WHERE p.pronamespace = 'history_track'::regnamespace AND p.proname ~ %s
         ORDER BY 1""", [GENERATED]).fetchall()
    assert qualified == []
    assert len(generated) >= 4 and [g for g in generated if g[1]] == []
