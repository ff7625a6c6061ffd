#!/usr/bin/env python3
"""Write upgrade/history_track--<previous>--<current>.sql from src/.

    python3 tools/upgrade_script.py            # write it
    python3 tools/upgrade_script.py --check    # exit 1 if the file is not what src/ gives

An upgrade script has three parts:

1. the release's own changes to data that outlives the code (event tables,
   existing catalog tables), written by hand below in PROLOGUES, then the
   catalog tables it adds, taken from src/;
2. the code, taken verbatim from src/: every function of the previous version
   is dropped and every function, event trigger, view, comment and grant of
   the current one created again, so the upgraded code is exactly a fresh
   install's (tests/test_upgrade.py compares the two);
3. the generated trigger functions of every tracked table, written again, so
   old tables get the new behaviour.

The previous version is the one whose install script is kept in upgrade/.
Once a release is out, its upgrade script is frozen; this tool is for the
release being prepared.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This tree's package: the SQL splitter and the control file's version are the ones it uses.
sys.path.insert(0, str(ROOT / "python"))
from history_track._resources import EXTENSION, control_version, statements  # noqa: E402

PROLOGUES = {
    ("0.1.0", "0.2.0"): """\
-- Event tables gain the columns that let replay follow a key change, and the
-- partial index that serves them (see src/50_api.sql).
DO $upgrade$
DECLARE
    v_event regclass;
BEGIN
    FOR v_event IN SELECT t.event_table FROM history_track.tracked_table AS t LOOP
        EXECUTE pg_catalog.format(
            'ALTER TABLE %s ADD COLUMN IF NOT EXISTS pgh_old_obj_id %s, ADD COLUMN IF NOT EXISTS pgh_statement_id bigint',
            v_event,
            (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute AS a
              WHERE a.attrelid OPERATOR(pg_catalog.=) v_event AND a.attname OPERATOR(pg_catalog.=) 'pgh_obj_id'));
        EXECUTE pg_catalog.format(
            'CREATE INDEX IF NOT EXISTS %I ON %s (pgh_old_obj_id, pgh_id) WHERE pgh_old_obj_id IS NOT NULL',
            pg_catalog.left((SELECT c.relname FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) v_event), 40)
                || '_pgh_old_obj_id_pgh_id_idx',
            v_event);
    END LOOP;
END
$upgrade$;

""",
    ("0.2.0", "0.3.0"): """\
-- Pinned, as the install script: the extension's schema's owner could have
-- defined operators that match better than PostgreSQL's own.
SET LOCAL search_path = pg_catalog, pg_temp;
-- The catalog (see src/10_catalog.sql). Columns keep their places: a tracker
-- condition becomes its compiled function (NULL until part 3 compiles the
-- text kept aside here); removals of history are logged with their action.
-- (The view over the condition goes first; part 2 makes it again.)
DROP VIEW @extschema@.history_trackers;
CREATE TEMPORARY TABLE history_track_conditions AS
SELECT k.table_name, k.label, k.condition FROM history_track.tracker AS k WHERE k.condition IS NOT NULL;
ALTER TABLE history_track.tracker ALTER COLUMN condition TYPE regprocedure USING NULL;
ALTER TABLE history_track.tracker ADD UNIQUE (condition);
-- (Its operations' CHECK used an unqualified <@, resolved in the schema the
-- extension was installed in.)
ALTER TABLE history_track.tracker
    DROP CONSTRAINT tracker_operations_check,
    ADD CONSTRAINT tracker_operations_check CHECK (operations OPERATOR(pg_catalog.<@) '{insert,update,delete}'::text[]
                                                  AND pg_catalog.cardinality(operations) > 0);
ALTER TABLE history_track.prune_log
    ALTER COLUMN before DROP NOT NULL,
    ADD COLUMN action text NOT NULL DEFAULT 'prune' CHECK (action IN ('prune', 'drop_events', 'drop_table')),
    ADD COLUMN table_text text,
    ADD COLUMN event_text text;
UPDATE history_track.prune_log SET table_text = table_name::text, event_text = event_table::text;
ALTER TABLE history_track.tracker DROP CONSTRAINT tracker_table_name_fkey,
    ADD FOREIGN KEY (table_name) REFERENCES history_track.tracked_table (table_name) ON DELETE CASCADE ON UPDATE CASCADE;
COMMENT ON TABLE history_track.tracker IS
    'One row per tracker: a label, the operations it fires on, its compiled condition and the row it stores';
COMMENT ON TABLE history_track.prune_log IS
    'One row per removal of history: prune_history() (action prune), untrack_table(..., drop_events => true) (drop_events) or a superuser''s DROP TABLE of an event table (drop_table)';

""",
}

# Changes to the data that need this release's code: run after part 2.
EPILOGUES = {
    ("0.2.0", "0.3.0"): """\
-- Every tracked table: its event table's columns become the types history
-- now stores (src/20_util.sql: a domain as its base type, a type a
-- non-superuser owns as its text form); its row type and columns are made
-- and remembered; its conditions are compiled -- parsed as the table's owner,
-- never as the extension's, then checked. A condition the new rules refuse
-- is dropped with a WARNING that gives it (declare it again in a form they
-- allow).
DO $upgrade$
DECLARE
    v_table     record;
    v_column    record;
    v_stored    record;
    v_old       record;
    v_row       regtype;
    v_probe     regprocedure;
    v_owner     name;
    v_message   text;
BEGIN
    -- Event tables are now remembered on their own (so that none is dropped
    -- behind history_track's back; src/80_lifecycle.sql).
    INSERT INTO history_track.event_table (event_table, history_of)
    SELECT t.event_table, t.table_name::text FROM history_track.tracked_table AS t
        ON CONFLICT DO NOTHING;
    FOR v_table IN SELECT t.* FROM history_track.tracked_table AS t ORDER BY t.table_id LOOP
        FOR v_column IN
            SELECT a.attname, a.atttypid, a.atttypmod FROM pg_catalog.pg_attribute AS a
             WHERE a.attrelid OPERATOR(pg_catalog.=) v_table.event_table AND a.attnum OPERATOR(pg_catalog.>) 0
               AND NOT a.attisdropped
               AND a.attname::text OPERATOR(pg_catalog.<>) ALL ('{pgh_id,pgh_created_at,pgh_label,pgh_operation,pgh_context_id,pgh_context,pgh_statement_id}')
        LOOP
            v_stored := history_track._stored_type(v_column.atttypid, v_column.atttypmod);
            CONTINUE WHEN v_stored.via OPERATOR(pg_catalog.=) 'same';
            EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING %s',
                                      history_track._qualified(v_table.event_table), v_column.attname,
                                      pg_catalog.format_type(v_stored.stored, v_stored.typmod),
                                      history_track._stored_value_sql(pg_catalog.quote_ident(v_column.attname),
                                                                      v_column.atttypid, v_column.atttypmod));
        END LOOP;
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) v_table.table_name);
        v_row := history_track._row_type(v_table.table_name);
        PERFORM history_track._remember_columns(v_table.table_name);
        SELECT r.rolname INTO v_owner FROM pg_catalog.pg_class AS c
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) c.relowner
         WHERE c.oid OPERATOR(pg_catalog.=) v_table.table_name;
        FOR v_old IN
            SELECT k.* FROM pg_temp.history_track_conditions AS k
             WHERE k.table_name OPERATOR(pg_catalog.=) v_table.table_name ORDER BY k.label
        LOOP
            BEGIN
                EXECUTE pg_catalog.format('SET LOCAL ROLE %I', v_owner);
                v_probe := history_track._parse_condition(v_table.table_name, v_old.label, v_row, v_old.condition);
                EXECUTE 'RESET ROLE';
                UPDATE history_track.tracker AS k
                   SET condition = history_track._compile_condition(v_table.table_name, v_old.label, v_row, v_probe,
                                       pg_catalog.format('history_track.%I', pg_catalog.format('_t%s_c%s', v_table.table_id,
                                                         pg_catalog.nextval('history_track.condition_id_seq'))))
                 WHERE k.table_name OPERATOR(pg_catalog.=) v_table.table_name AND k.label OPERATOR(pg_catalog.=) v_old.label;
                EXECUTE pg_catalog.format('DROP FUNCTION %s', v_probe);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
                DELETE FROM history_track.tracker AS k
                 WHERE k.table_name OPERATOR(pg_catalog.=) v_table.table_name AND k.label OPERATOR(pg_catalog.=) v_old.label;
                RAISE WARNING 'tracker "%" of table % was removed: its condition cannot be compiled', v_old.label, v_table.table_name
                    USING DETAIL = pg_catalog.format('%s The condition was: %s', v_message, v_old.condition),
                          HINT = 'Declare it again with track_table(..., label => ..., condition => ...) in a form history_track allows (see doc/reference.md, "Conditions").';
            END;
        END LOOP;
    END LOOP;
    DROP TABLE pg_temp.history_track_conditions;   -- (a member while the script runs)
END
$upgrade$;

""",
}

# Statements of src/ that create what outlives an upgrade: left out of part 2.
KEEP_OUT = re.compile(
    r"^(\\echo|CREATE SCHEMA|COMMENT ON SCHEMA|CREATE (?:UNLOGGED )?TABLE|COMMENT ON TABLE|CREATE SEQUENCE|ALTER SEQUENCE"
    r"|SELECT pg_catalog\.pg_extension_config_dump|REVOKE ALL ON SCHEMA|GRANT USAGE ON SCHEMA"
    r"|REVOKE ALL ON history_track\.)",
)


def current_version() -> str:
    return control_version((ROOT / f"{EXTENSION}.control").read_text())


def previous_version(current: str) -> str:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split("."))

    olds = [
        m.group(1)
        for p in (ROOT / "upgrade").glob(f"{EXTENSION}--*.sql")
        if (m := re.fullmatch(rf"{EXTENSION}--(\d+\.\d+\.\d+)\.sql", p.name))
    ]
    olds = [v for v in olds if key(v) < key(current)]
    if not olds:
        sys.exit(f"no previous release's install script in upgrade/ (upgrade/{EXTENSION}--X.Y.Z.sql)")
    return max(olds, key=key)


CREATED_TABLE = re.compile(r"^CREATE (?:UNLOGGED )?(?:TABLE|SEQUENCE) (history_track\.\w+)")


def build(old: str, new: str) -> str:
    # Catalog tables this version adds: created (with their comments, dump
    # registration and privileges) from src/, before the code.
    old_tables = {
        m.group(1)
        for stmt in statements((ROOT / "upgrade" / f"{EXTENSION}--{old}.sql").read_text())
        if (m := CREATED_TABLE.match(stmt))
    }
    tables, code = [], []
    for path in sorted((ROOT / "src").glob("*.sql")):
        new_tables: set[str] = set()
        for stmt in statements(path.read_text()):
            if (m := CREATED_TABLE.match(stmt)) and m.group(1) not in old_tables:
                new_tables.add(m.group(1))
            if KEEP_OUT.match(stmt):
                if any(re.search(rf"\b{re.escape(t)}\b", stmt) for t in new_tables):
                    tables.append(f"-- from src/{path.name}\n{stmt}")
                continue
            stmt = re.sub(r"^CREATE FUNCTION\b", "CREATE OR REPLACE FUNCTION", stmt)
            stmt = re.sub(r"^CREATE VIEW\b", "CREATE OR REPLACE VIEW", stmt)
            code.append(f"-- from src/{path.name}\n{stmt}")
    return "\n".join(
        [
            f"-- history_track {old} -> {new}. Generated by tools/upgrade_script.py from src/; do not edit.",
            '\\echo Use "ALTER EXTENSION history_track UPDATE" to load this file. \\quit',
            "",
            "-- 1. This release's changes to the data: its own, then the catalog tables it adds.",
            PROLOGUES.get((old, new), "-- (none)\n"),
            *tables,
            "",
            "-- 2. The code: the previous version's functions and event triggers go, this version's come.",
            """DO $upgrade$
DECLARE
    v_object record;
BEGIN
    FOR v_object IN
        SELECT e.evtname FROM pg_catalog.pg_event_trigger AS e
          JOIN pg_catalog.pg_depend AS d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_event_trigger'::regclass
                                        AND d.objid OPERATOR(pg_catalog.=) e.oid AND d.deptype OPERATOR(pg_catalog.=) 'e'
         WHERE d.refobjid OPERATOR(pg_catalog.=) (SELECT x.oid FROM pg_catalog.pg_extension AS x
                                                   WHERE x.extname OPERATOR(pg_catalog.=) 'history_track')
    LOOP
        EXECUTE pg_catalog.format('DROP EVENT TRIGGER %I', v_object.evtname);
    END LOOP;
    FOR v_object IN
        SELECT p.oid::regprocedure AS fn FROM pg_catalog.pg_proc AS p
          JOIN pg_catalog.pg_depend AS d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
                                        AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) 'e'
         WHERE d.refobjid OPERATOR(pg_catalog.=) (SELECT x.oid FROM pg_catalog.pg_extension AS x
                                                   WHERE x.extname OPERATOR(pg_catalog.=) 'history_track')
           -- (functions triggers call stay, and are replaced below)
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS t
                            WHERE t.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::regclass
                              AND t.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
                              AND t.refobjid OPERATOR(pg_catalog.=) p.oid)
    LOOP
        EXECUTE pg_catalog.format('DROP FUNCTION %s', v_object.fn);
    END LOOP;
END
$upgrade$;
""",
            *code,
            "",
            "-- 3. Every tracked table's generated objects, written by this version (and,",
            "-- before, this release's changes to the data that need its code).",
            """-- (An extension script may replace only its own members: the generated
-- functions and types join the extension while they are written again, and
-- leave it after; like those track_table() writes, they belong to the
-- database, and pg_dump keeps them. The triggers stay in place throughout.)
DO $upgrade$
DECLARE
    v_fn regprocedure;
BEGIN
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
         WHERE p.pronamespace OPERATOR(pg_catalog.=) 'history_track'::regnamespace
           AND p.proname::text ~ '^_t[0-9]+_'
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                            WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
                              AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')
    LOOP
        EXECUTE pg_catalog.format('ALTER EXTENSION history_track ADD FUNCTION %s', v_fn);
    END LOOP;
END
$upgrade$;
""",
            EPILOGUES.get((old, new), ""),
            """DO $upgrade$
DECLARE
    v_table record;
    v_fn    regprocedure;
    v_type  regtype;
BEGIN
    FOR v_table IN SELECT t.table_name, t.event_table FROM history_track.tracked_table AS t LOOP
        PERFORM history_track._protect_event_table(v_table.event_table);
        IF EXISTS (SELECT FROM history_track.tracker AS k WHERE k.table_name OPERATOR(pg_catalog.=) v_table.table_name) THEN
            PERFORM history_track._generate(v_table.table_name);
        END IF;
    END LOOP;
    FOR v_fn IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
          JOIN pg_catalog.pg_depend AS d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
                                        AND d.objid OPERATOR(pg_catalog.=) p.oid AND d.deptype OPERATOR(pg_catalog.=) 'e'
         WHERE p.pronamespace OPERATOR(pg_catalog.=) 'history_track'::regnamespace
           AND p.proname::text ~ '^_t[0-9]+_'
    LOOP
        EXECUTE pg_catalog.format('ALTER EXTENSION history_track DROP FUNCTION %s', v_fn);
    END LOOP;
    FOR v_type IN
        SELECT t.oid::regtype FROM pg_catalog.pg_type AS t
          JOIN pg_catalog.pg_depend AS d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::regclass
                                        AND d.objid OPERATOR(pg_catalog.=) t.oid AND d.deptype OPERATOR(pg_catalog.=) 'e'
         WHERE t.typnamespace OPERATOR(pg_catalog.=) 'history_track'::regnamespace
           AND t.typname::text ~ '^_t[0-9]+_row$'
    LOOP
        EXECUTE pg_catalog.format('ALTER EXTENSION history_track DROP TYPE %s', v_type);
    END LOOP;
END
$upgrade$;
""",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    new = current_version()
    old = previous_version(new)
    path = ROOT / "upgrade" / f"{EXTENSION}--{old}--{new}.sql"
    text = build(old, new)
    if args.check:
        if not path.exists() or path.read_text() != text:
            print(f"{path.relative_to(ROOT)} is not what src/ gives: run python3 tools/upgrade_script.py")
            return 1
        return 0
    path.write_text(text)
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
