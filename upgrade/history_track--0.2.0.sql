-- history_track: row history with triggers.
--
-- This file and the others in src/ are concatenated, in file-name order, into
-- history_track--<version>.sql by the Makefile and by the Python installer.
-- One concern per file:
--   00_schema.sql    the internal schema and conventions
--   10_catalog.sql   the catalog: tracked tables and their trackers
--   20_util.sql      small helpers: errors, caller, names, columns
--   30_context.sql   where context is read (the only place)
--   40_generate.sql  where trigger code is generated (the only place)
--   50_api.sql       the public API: track_table, untrack_table, history_trackers
--   60_manual.sql    events recorded by a call: manual events, baselines
--   70_read.sql      reading history: history_as_of (the one replay),
--                    history_events (diffs), history_context_events
--   75_revert.sql    revert_row, revert_table
--   80_lifecycle.sql event triggers following DDL on tracked and event tables
--   90_privileges.sql  who may execute what (last, so it covers everything)
--
-- Conventions
--   * Public API names live in the extension's schema (@extschema@); their
--     parameter names are part of the API (tbl, label, ...).
--   * Everything else lives in the schema history_track, private helpers
--     start with "_", their parameters are p_*, local variables v_*.
--   * Dynamic SQL only through format() with %I / %L, never concatenation of
--     names. Everything is schema-qualified; SECURITY DEFINER functions pin
--     search_path = pg_catalog, pg_temp and say why they need the privilege.

\echo Use "CREATE EXTENSION history_track" to load this file. \quit

CREATE SCHEMA history_track;
COMMENT ON SCHEMA history_track IS
    'history_track internals: catalog, generated trigger functions and helpers; not a public API';
REVOKE ALL ON SCHEMA history_track FROM PUBLIC;
GRANT USAGE ON SCHEMA history_track TO PUBLIC;
-- The catalog: which tables have an event table, and which trackers write to it.
--
-- A row of tracked_table exists as long as the event table does: untracking a
-- table (without drop_events) removes its trackers but keeps this row, so the
-- history stays known and a later track_table() appends to the same event table.
-- Catalog references are regclass, so renames and pg_dump keep working.

CREATE SEQUENCE history_track.tracked_table_id_seq AS integer;

CREATE TABLE history_track.tracked_table (
    table_name  regclass    NOT NULL PRIMARY KEY,
    event_table regclass    NOT NULL UNIQUE,
    -- Stable short id used to name the generated trigger functions.
    table_id    integer     NOT NULL UNIQUE
                            DEFAULT pg_catalog.nextval('history_track.tracked_table_id_seq'),
    -- Mirrored columns: NULL means every column of the table, minus exclude.
    columns     name[],
    exclude     name[]      NOT NULL DEFAULT '{}',
    tracked_by  name        NOT NULL,
    tracked_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER SEQUENCE history_track.tracked_table_id_seq OWNED BY history_track.tracked_table.table_id;

COMMENT ON TABLE history_track.tracked_table IS
    'One row per table with an event table (tracked now, or tracked before and its history kept)';

CREATE TABLE history_track.tracker (
    table_name regclass NOT NULL
               REFERENCES history_track.tracked_table (table_name) ON DELETE CASCADE,
    label      text     NOT NULL CHECK (label <> ''),
    operations text[]   NOT NULL
               CHECK (operations <@ '{insert,update,delete}' AND pg_catalog.cardinality(operations) > 0),
    -- SQL boolean expression over OLD and NEW, as the user wrote it.
    condition  text,
    -- For updates: record only when one of these columns changed;
    -- NULL means any mirrored column.
    changed    name[],
    -- 'old' or 'new': which row an event stores; NULL: new for insert and
    -- update, old for delete.
    snapshot   text     CHECK (snapshot IN ('old', 'new')),
    created_by name     NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (table_name, label)
);

COMMENT ON TABLE history_track.tracker IS
    'One row per tracker: a label, the operations it fires on, its condition and the row it stores';

-- Every prune_history() call: who removed which events, when.
CREATE TABLE history_track.prune_log (
    table_name     regclass    NOT NULL,
    event_table    regclass    NOT NULL,
    before         timestamptz NOT NULL,
    events_deleted bigint      NOT NULL,
    pruned_by      name        NOT NULL,
    pruned_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE history_track.prune_log IS
    'One row per prune_history() call: the table, the moment before which events were deleted, how many, by whom, when';

-- Hash chains (start_hash_chain): one row per chained event table, holding
-- the chain's last link; and one link per event, in chain order. Each link's
-- hash covers its event's row and the previous link's hash.
CREATE TABLE history_track.chain (
    event_table regclass    NOT NULL PRIMARY KEY,
    genesis     bytea       NOT NULL,            -- the hash before the first link
    seq         bigint      NOT NULL DEFAULT 0,  -- the last link
    hash        bytea       NOT NULL,
    anchor_seq  bigint      NOT NULL DEFAULT 0,  -- links up to here were pruned
    anchor_hash bytea       NOT NULL,
    after_id    bigint      NOT NULL,            -- the last pgh_id before the chain began
    started_by  name        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE TABLE history_track.chain_link (
    event_table regclass NOT NULL,
    seq         bigint   NOT NULL,
    pgh_id      bigint   NOT NULL,
    hash        bytea    NOT NULL,
    PRIMARY KEY (event_table, seq)
);

COMMENT ON TABLE history_track.chain IS
    'One row per event table with a hash chain: its genesis, last link and pruning anchor';
COMMENT ON TABLE history_track.chain_link IS
    'One link per chained event: sha256(previous link || the event''s row), in chain order';

SELECT pg_catalog.pg_extension_config_dump('history_track.chain', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.chain_link', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.tracked_table', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.prune_log', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.tracked_table_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.tracker', '');

REVOKE ALL ON history_track.tracked_table, history_track.tracker,
              history_track.tracked_table_id_seq, history_track.prune_log,
              history_track.chain, history_track.chain_link FROM PUBLIC;
-- What was pruned is no secret: anyone may read the log (nobody may write it).
GRANT SELECT ON history_track.prune_log TO PUBLIC;
-- Small helpers shared by the API and the generator.

-- The role that called into the API. Inside a SECURITY DEFINER function
-- current_user is the function's owner, so the caller is the role the session
-- currently acts as: the SET ROLE target, or else the session user. (A role can
-- only SET ROLE to roles it is a member of, so this cannot be forged.)
CREATE FUNCTION history_track._caller() RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE pg_catalog.current_setting('role')
               WHEN 'none' THEN pg_catalog.session_user()
               ELSE pg_catalog.current_setting('role')::name
           END
$$;

-- Refuse unless the caller owns (or has the privileges of the owner of) p_table.
CREATE FUNCTION history_track._assert_owner(p_table regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner name;
BEGIN
    SELECT r.rolname INTO v_owner
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) c.relowner
     WHERE c.oid OPERATOR(pg_catalog.=) p_table;
    IF NOT pg_catalog.pg_has_role(history_track._caller(), v_owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', p_table
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('Table %s is owned by role "%s"; the caller is role "%s".',
                                             p_table, v_owner, history_track._caller()),
                  HINT = 'Only the table''s owner (or a member of the owning role) can change its tracking.';
    END IF;
END
$$;

-- Refuse what cannot be tracked, before anything is created.
CREATE FUNCTION history_track._assert_trackable(p_table regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_class  record;
    v_key    name[];
    v_clash  name[];
BEGIN
    SELECT c.relkind, c.relpersistence, c.relispartition, n.nspname
      INTO v_class
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) p_table;

    IF v_class.relkind IN ('v', 'm') THEN
        RAISE EXCEPTION '% is a %', p_table, CASE v_class.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Only ordinary tables can be tracked: history is recorded by triggers on the table that holds the rows.',
                  HINT = 'Track the table(s) the view reads from.';
    ELSIF v_class.relkind = 'f' THEN
        RAISE EXCEPTION '% is a foreign table', p_table
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Writes to a foreign table happen on the remote server, out of reach of local triggers.',
                  HINT = 'Track the table on the server that holds the rows.';
    ELSIF v_class.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', p_table
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Pass an ordinary table to track_table().';
    END IF;

    IF v_class.relispartition THEN
        RAISE EXCEPTION '% is a partition', p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A partition''s history belongs with its partitioned table''s: one event table, one key.',
                  HINT = pg_catalog.format('Track the partitioned table instead: SELECT track_table(%L); every partition, also those attached later, is recorded with it.',
                                           pg_catalog.pg_partition_root(p_table)::text);
    END IF;

    IF v_class.relpersistence = 't' THEN
        RAISE EXCEPTION '% is a temporary table', p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A temporary table disappears with its session; its history would be meaningless to anyone else.',
                  HINT = 'Track a permanent (or unlogged) table.';
    END IF;

    IF v_class.nspname IN ('pg_catalog', 'information_schema', 'history_track')
       OR v_class.nspname LIKE 'pg\_toast%' THEN
        RAISE EXCEPTION 'table % belongs to schema "%", which cannot be tracked', p_table, v_class.nspname
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Track your own tables only.';
    END IF;

    IF EXISTS (SELECT FROM history_track.tracked_table AS t
                WHERE t.event_table OPERATOR(pg_catalog.=) p_table) THEN
        RAISE EXCEPTION '% is an event table', p_table
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Event tables are append-only history written by history_track itself.',
                  HINT = 'Track the table whose history it holds instead.';
    END IF;

    v_key := history_track._key_columns(p_table);
    IF v_key IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', p_table
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Every event carries the primary key of its row in pgh_obj_id, so that a row''s history can be found.',
                  HINT = pg_catalog.format('Add one, e.g. ALTER TABLE %s ADD PRIMARY KEY (...), then track the table.', p_table);
    END IF;

    SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum) INTO v_clash
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid OPERATOR(pg_catalog.=) p_table
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
       AND a.attname::text LIKE 'pgh\_%';
    IF v_clash IS NOT NULL THEN
        RAISE EXCEPTION 'table % has columns whose names start with "pgh_": %', p_table,
                        pg_catalog.array_to_string(v_clash, ', ')
            USING ERRCODE = 'duplicate_column',
                  DETAIL = 'The pgh_ prefix is reserved for the event table''s own columns (pgh_id, pgh_created_at, ...).',
                  HINT = 'Rename those columns, or leave them out of the history with exclude => ''{...}''.';
    END IF;
END
$$;

-- The primary key's columns in key order, or NULL when there is none.
CREATE FUNCTION history_track._key_columns(p_table regclass) RETURNS name[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.array_agg(a.attname ORDER BY k.ord)
      FROM pg_catalog.pg_index AS i
     CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_catalog.pg_attribute AS a
        ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum
     WHERE i.indrelid OPERATOR(pg_catalog.=) p_table AND i.indisprimary
$$;

-- The event table's name for a table name (see doc/reference.md, "Event table names"):
--   <table>_event when that fits in 63 bytes; otherwise the table name cut to
--   fit (on a character boundary), an underscore, the first 8 hex digits of the
--   md5 of the full table name, and _event.
CREATE FUNCTION history_track._event_table_name(p_table_name name) RETURNS name
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name   text := p_table_name::text;
    v_suffix text;
BEGIN
    IF pg_catalog.octet_length(v_name) + 6 <= 63 THEN
        RETURN (v_name || '_event')::name;
    END IF;
    v_suffix := '_' || pg_catalog.left(pg_catalog.md5(v_name), 8) || '_event';
    WHILE pg_catalog.octet_length(v_name) + pg_catalog.octet_length(v_suffix) > 63 LOOP
        v_name := pg_catalog.left(v_name, -1);
    END LOOP;
    RETURN (v_name || v_suffix)::name;
END
$$;

-- Is the type (seen through domains) one of PostgreSQL's own? Values of other
-- types are turned into JSON through their text form, never through a cast a
-- type's owner could have defined.
CREATE FUNCTION history_track._is_builtin_type(p_type oid) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE base(oid, basetype) AS (
        SELECT t.oid, t.typbasetype FROM pg_catalog.pg_type AS t WHERE t.oid OPERATOR(pg_catalog.=) p_type
        UNION ALL
        SELECT t.oid, t.typbasetype FROM pg_catalog.pg_type AS t
          JOIN base AS b ON t.oid OPERATOR(pg_catalog.=) b.basetype
    )
    SELECT b.oid::bigint OPERATOR(pg_catalog.<) 16384
      FROM base AS b WHERE b.basetype OPERATOR(pg_catalog.=) 0
$$;

-- The columns the event table mirrors: the table's columns (or p_columns),
-- minus p_exclude and virtual generated columns, in the table's column order,
-- with their SQL types.
CREATE FUNCTION history_track._mirrored_columns(p_table regclass, p_columns name[], p_exclude name[])
RETURNS TABLE (attname name, type_sql text, collation_sql text, is_builtin boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attname,
           pg_catalog.format_type(a.atttypid, a.atttypmod),
           CASE WHEN a.attcollation OPERATOR(pg_catalog.<>) t.typcollation AND a.attcollation OPERATOR(pg_catalog.<>) 0
                THEN pg_catalog.format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END,
           history_track._is_builtin_type(a.atttypid)
      FROM pg_catalog.pg_attribute AS a
      JOIN pg_catalog.pg_type AS t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
      LEFT JOIN pg_catalog.pg_collation AS co ON co.oid OPERATOR(pg_catalog.=) a.attcollation
      LEFT JOIN pg_catalog.pg_namespace AS cn ON cn.oid OPERATOR(pg_catalog.=) co.collnamespace
     WHERE a.attrelid OPERATOR(pg_catalog.=) p_table
       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
       -- Virtual generated columns (PostgreSQL 18+) have no value in the
       -- transition tables; they are computed from the mirrored columns.
       AND a.attgenerated OPERATOR(pg_catalog.<>) 'v'
       AND (p_columns IS NULL OR a.attname OPERATOR(pg_catalog.=) ANY (p_columns))
       AND NOT (a.attname OPERATOR(pg_catalog.=) ANY (COALESCE(p_exclude, '{}')))
     ORDER BY a.attnum
$$;

-- The labels of the events that carry a row's state, which history_as_of()
-- replays: the default trackers' (insert, update, delete), the baseline that
-- track_table(..., baseline => true) records, and revert_row()/revert_table()'s
-- writes. No labeled tracker or manual event may use them.
CREATE FUNCTION history_track._state_labels() RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$ SELECT '{insert,update,delete,baseline,revert}'::text[] $$;

-- The event table's own columns, in order; the mirrored columns follow them.
CREATE FUNCTION history_track._pgh_columns() RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$
    SELECT '{pgh_id,pgh_created_at,pgh_label,pgh_operation,pgh_obj_id,pgh_context_id,pgh_context,pgh_old_obj_id,pgh_statement_id}'::text[]
$$;

-- SQL comparing p_expr (a key as pgh_obj_id holds it) with the key given as
-- text in parameter p_param: cast to the key's type for PostgreSQL's own types
-- (so the index on pgh_obj_id serves), parsed as JSON for a composite key, and
-- compared as text for any other type, so that no input function or cast
-- defined by a type's owner runs with the privileges of the functions that
-- call this.
CREATE FUNCTION history_track._key_match_sql(p_table regclass, p_expr text, p_param text) RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type text := history_track._obj_id_type(p_table);
BEGIN
    IF v_type OPERATOR(pg_catalog.=) 'jsonb' THEN
        RETURN pg_catalog.format('%s OPERATOR(pg_catalog.=) %s::pg_catalog.jsonb', p_expr, p_param);
    ELSIF (SELECT history_track._is_builtin_type(a.atttypid) FROM pg_catalog.pg_attribute AS a
            WHERE a.attrelid OPERATOR(pg_catalog.=) p_table
              AND a.attname OPERATOR(pg_catalog.=) (history_track._key_columns(p_table))[1]) THEN
        RETURN pg_catalog.format('%s OPERATOR(pg_catalog.=) %s::%s', p_expr, p_param, v_type);
    END IF;
    RETURN pg_catalog.format('pg_catalog.format(''%%s'', %s) OPERATOR(pg_catalog.=) %s', p_expr, p_param);
END
$$;

-- 'ONLY ' for an ordinary table (its inheritance children, if any, are not
-- part of its history), '' for a partitioned table (its rows are in its
-- partitions).
CREATE FUNCTION history_track._only(p_table regclass) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE c.relkind WHEN 'p' THEN '' ELSE 'ONLY ' END
      FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) p_table
$$;

-- Whether p_table has the three default trackers, whose events history_as_of()
-- replays (and a baseline or a revert needs).
CREATE FUNCTION history_track._has_default_trackers(p_table regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.count(*) OPERATOR(pg_catalog.=) 3 FROM history_track.tracker AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table
       AND t.label OPERATOR(pg_catalog.=) ANY ('{insert,update,delete}')
$$;

-- p_table and, for a partitioned table, every partition at every level: a
-- write names one of them, and fires that one's statement triggers.
CREATE FUNCTION history_track._relations(p_table regclass) RETURNS regclass[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY(SELECT p_table UNION SELECT t.relid FROM pg_catalog.pg_partition_tree(p_table) AS t)
$$;

-- Whether p_table's history triggers are in place (not yet while pg_restore
-- rebuilds a database: the catalog is back before the triggers are).
CREATE FUNCTION history_track._is_recording(p_table regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM pg_catalog.pg_trigger AS tg
                    WHERE tg.tgrelid OPERATOR(pg_catalog.=) p_table AND tg.tgname::text LIKE 'history\_track\_%')
$$;
-- Context: free-form metadata (user, request, job) attached to every event a
-- transaction writes. This file is the only place context is read.
--
-- The context lives in the setting history_track.context as a JSON object,
-- normally transaction-local (set_config(..., true) or set_history_context()),
-- so it ends with the transaction and is safe behind transaction poolers.
-- Its id is derived from the transaction, never from a setting, so it is the
-- same for every event of one transaction and cannot be forged.

-- The id of the current transaction's context, laid out as a UUIDv7: the
-- first 48 bits are the transaction's start time (now(), in milliseconds, the
-- same clock as pgh_created_at), the rest an md5 of the server's start time,
-- the database and the top-level transaction id. So every event of one
-- transaction shares it, no two transactions do, no setting can choose it,
-- ids sort by time, and history_context_events() finds a context's events
-- through the time index on pgh_created_at instead of an index of its own.
-- (_context_id, _context and _context_is_set run once per written statement,
-- so they carry no SET clause of their own: only the extension's owner may call them, always
-- from functions that pin search_path, and every name in them is qualified.)
CREATE FUNCTION history_track._context_id() RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_hash text := pg_catalog.md5(pg_catalog.pg_postmaster_start_time()::text OPERATOR(pg_catalog.||) '/'
                                  OPERATOR(pg_catalog.||) pg_catalog.current_database()::text OPERATOR(pg_catalog.||) '/'
                                  OPERATOR(pg_catalog.||) pg_catalog.pg_current_xact_id()::text);
    v_ms   bigint := pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now()) OPERATOR(pg_catalog.*) 1000)::bigint;
BEGIN
    RETURN (pg_catalog.lpad(pg_catalog.to_hex(v_ms), 12, '0') OPERATOR(pg_catalog.||) '7'
            OPERATOR(pg_catalog.||) pg_catalog.substr(v_hash, 1, 3)
            OPERATOR(pg_catalog.||) pg_catalog.substr('89ab', (pg_catalog.ascii(pg_catalog.substr(v_hash, 4, 1))
                                                               OPERATOR(pg_catalog.%) 4) OPERATOR(pg_catalog.+) 1, 1)
            OPERATOR(pg_catalog.||) pg_catalog.substr(v_hash, 5, 15))::uuid;
END
$$;

-- When a context began: the transaction start time its id carries, to the millisecond.
CREATE FUNCTION history_track._context_time(p_context_id uuid) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT
AS $$
    SELECT pg_catalog.to_timestamp((('x' OPERATOR(pg_catalog.||) pg_catalog.substr(
               pg_catalog.replace(p_context_id::text, '-', ''), 1, 12))::bit(48)::bigint)::double precision
           OPERATOR(pg_catalog./) 1000)
$$;

-- The current context, or NULLs when none is set: what the generated triggers
-- read, once per statement. A setting that is not a JSON object is
-- refused: the write that would have carried it fails with a clear error
-- instead of being recorded without it (invalid JSON: 22P02 from the cast).
-- label: the default trackers' label for this statement, NULL for their own
-- ('insert', 'update', 'delete'); revert_row() and revert_table() run with
-- history_track.label = 'revert', so their writes are labeled as a revert.
-- No other value is accepted: a setting cannot pass writes off as anything
-- but what they are.
CREATE FUNCTION history_track._context(OUT context_id uuid, OUT context jsonb, OUT label text)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_text text := pg_catalog.current_setting('history_track.context', true);
BEGIN
    label := NULLIF(pg_catalog.current_setting('history_track.label', true), '');
    IF label OPERATOR(pg_catalog.<>) 'revert' THEN
        RAISE EXCEPTION 'history_track.label must be empty or ''revert'', not %', pg_catalog.quote_literal(label)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Events of the default trackers are labeled insert, update and delete, or revert while revert_row() or revert_table() runs.',
                  HINT = 'RESET history_track.label; record your own labels with track_table(..., label => ...) or record_history_event().';
    END IF;
    -- (::jsonb and ::uuid below resolve in pg_catalog: callers pin search_path.)
    IF v_text IS NULL OR v_text OPERATOR(pg_catalog.=) '' THEN
        RETURN;
    END IF;
    context := v_text::jsonb;
    IF pg_catalog.jsonb_typeof(context) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'history_track.context must be a JSON object, not %', pg_catalog.jsonb_typeof(context)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The setting holds %L.', pg_catalog.left(v_text, 200)),
                  HINT = 'Set it to a JSON object, e.g. {"user": "alice"}, or use set_history_context().';
    END IF;
    context_id := history_track._context_id();
END
$$;

-- Whether a context or a label is set at all: what the generated triggers ask
-- before calling _context(). A one-expression SQL function, so PostgreSQL
-- inlines it and PL/pgSQL evaluates it without running a query: a statement
-- written without context pays 0.4 microseconds here instead of the 2.7 of
-- calling _context() (measured in a PL/pgSQL loop; about 1% of a single-row
-- update).
CREATE FUNCTION history_track._context_is_set() RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.current_setting('history_track.context', true) OPERATOR(pg_catalog.<>) ''
        OR pg_catalog.current_setting('history_track.label', true) OPERATOR(pg_catalog.<>) ''
$$;

CREATE FUNCTION @extschema@.set_history_context(metadata jsonb) RETURNS uuid
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: to call the internal context functions, which only the
-- extension's owner may execute. It only sets the caller's own setting.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_merged jsonb;
BEGIN
    IF metadata IS NULL OR pg_catalog.jsonb_typeof(metadata) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'context metadata must be a JSON object, not %',
                        COALESCE(pg_catalog.jsonb_typeof(metadata), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an object, e.g. set_history_context(''{"user": "alice"}'').';
    END IF;
    v_merged := COALESCE((history_track._context()).context, '{}'::jsonb) OPERATOR(pg_catalog.||) metadata;
    PERFORM pg_catalog.set_config('history_track.context', v_merged::text, true);
    RETURN history_track._context_id();
END
$$;

COMMENT ON FUNCTION @extschema@.set_history_context(jsonb) IS
    'Merge metadata into the current transaction''s history context and return the context id';
-- Trigger generation: the one place that writes trigger code.
--
-- For every tracked table and every operation (insert, update, delete) that
-- has at least one tracker, _generate() writes one trigger function
--     history_track._t<table_id>_<operation>()
-- and one AFTER ... FOR EACH STATEMENT trigger "history_track_<operation>" on
-- the table. The function holds one INSERT ... SELECT per tracker, reading the
-- statement's transition tables (pgh_old_rows / pgh_new_rows), so a bulk
-- statement writes its events in one pass instead of one function call per row.
--
-- Updates pair the old and new transition rows by position: PostgreSQL appends
-- the old and the new version of each updated row to the two transition tables
-- together, so the n-th old row and the n-th new row are the same row, even
-- when the update changed its primary key.
--
-- The generated functions are SECURITY DEFINER and owned by the extension's
-- owner, who also owns the event tables: that is what lets any role allowed to
-- write the table record history it cannot itself write, rewrite or skip.
-- They pin search_path and qualify every function and operator they call.

-- schema.name of a relation, quoted.
CREATE FUNCTION history_track._qualified(p_rel regclass) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) p_rel
$$;

-- The SQL type of pgh_obj_id: the key column's own type for a one-column key,
-- jsonb (an array of the key's values in key order) for a composite key.
CREATE FUNCTION history_track._obj_id_type(p_table regclass) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.cardinality(k.cols) OPERATOR(pg_catalog.=) 1
                THEN (SELECT pg_catalog.format_type(a.atttypid, a.atttypmod)
                        FROM pg_catalog.pg_attribute AS a
                       WHERE a.attrelid OPERATOR(pg_catalog.=) p_table
                         AND a.attname OPERATOR(pg_catalog.=) k.cols[1])
                ELSE 'jsonb' END
      FROM (SELECT history_track._key_columns(p_table) AS cols) AS k
$$;

-- The expression computing pgh_obj_id from the row aliased p_alias.
-- Key values of types that are not PostgreSQL's own go into the JSON array as
-- their text form, so no cast defined by a type's owner runs here.
CREATE FUNCTION history_track._obj_id_sql(p_table regclass, p_alias text) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN pg_catalog.cardinality(k.cols) OPERATOR(pg_catalog.=) 1
                THEN pg_catalog.format('%I.%I', p_alias, k.cols[1])
                ELSE pg_catalog.format('pg_catalog.jsonb_build_array(%s)',
                         (SELECT pg_catalog.string_agg(
                                     CASE WHEN history_track._is_builtin_type(a.atttypid)
                                          THEN pg_catalog.format('%I.%I', p_alias, a.attname)
                                          ELSE pg_catalog.format('pg_catalog.format(''%%s'', %I.%I)', p_alias, a.attname)
                                     END, ', ' ORDER BY u.ord)
                            FROM pg_catalog.unnest(k.cols) WITH ORDINALITY AS u(col, ord)
                            JOIN pg_catalog.pg_attribute AS a
                              ON a.attrelid OPERATOR(pg_catalog.=) p_table
                             AND a.attname OPERATOR(pg_catalog.=) u.col))
           END
      FROM (SELECT history_track._key_columns(p_table) AS cols) AS k
$$;

-- The INSERT ... SELECT that one tracker runs for one operation. It reads the
-- context from the trigger function's variables pgh_ctx_id, pgh_ctx and
-- pgh_ctx_label (read once per statement); with p_check, the variant executed once at track_table time,
-- against empty stand-ins, with NULL context. 'truncate' is the delete
-- trackers' statement reading the whole table before it is emptied; with
-- p_dynamic, the text of that statement for a partitioned table's tree, run by
-- EXECUTE with the truncated relation in place of pgh_truncated_table and the
-- context as $1, $2 (label $3).
--
-- Updates that change the primary key also store the old key
-- (pgh_old_obj_id) and pgh_statement_id, a value drawn once per statement
-- from pgh_id's own sequence, so below every event the statement writes: it
-- tells replay which key changes happened in the same statement (a swap of
-- two keys is not a delete of either) and where a moved row's history
-- continues under its old key. Both are NULL on every other event.
CREATE FUNCTION history_track._tracker_sql(p_table regclass, p_label text, p_operation text,
                                           p_check boolean DEFAULT false, p_dynamic boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   history_track.tracked_table;
    v_tracker history_track.tracker;
    v_cols    name[];
    v_changed name[];
    v_snap    text;
    v_from    text;
    v_where   text[] := '{}'::text[];
    v_label   text;
    v_context text := CASE WHEN p_check THEN 'NULL::uuid, NULL::jsonb'
                           WHEN p_dynamic THEN '$1, $2'
                           ELSE 'pgh_ctx_id, pgh_ctx' END;
    v_moved   text := 'NULL, NULL';
    v_key     name[] := history_track._key_columns(p_table);
    v_tracked text := CASE p_operation WHEN 'truncate' THEN 'delete' ELSE p_operation END;
BEGIN
    SELECT * INTO STRICT v_table FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table;
    SELECT * INTO STRICT v_tracker FROM history_track.tracker AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table AND t.label OPERATOR(pg_catalog.=) p_label;

    SELECT pg_catalog.array_agg(m.attname) INTO v_cols
      FROM history_track._mirrored_columns(p_table, v_table.columns, v_table.exclude) AS m;

    v_snap := CASE p_operation WHEN 'insert' THEN 'new'
                               WHEN 'update' THEN COALESCE(v_tracker.snapshot, 'new')
                               ELSE 'old' END;

    IF p_operation OPERATOR(pg_catalog.=) 'insert' THEN
        v_from := 'pgh_new_rows AS new';
        IF v_tracker.condition IS NOT NULL THEN
            v_from := v_from || pg_catalog.format(E'\n      CROSS JOIN (SELECT (NULL::%s).*) AS old',
                                                  history_track._qualified(p_table));
        END IF;
    ELSIF p_operation OPERATOR(pg_catalog.=) ANY (ARRAY['delete', 'truncate']) THEN
        v_from := CASE WHEN p_operation OPERATOR(pg_catalog.<>) 'truncate' OR p_check THEN 'pgh_old_rows AS old'
                       WHEN p_dynamic THEN 'ONLY pgh_truncated_table AS old'
                       ELSE pg_catalog.format('ONLY %s AS old', history_track._qualified(p_table)) END;
        IF v_tracker.condition IS NOT NULL THEN
            v_from := v_from || pg_catalog.format(E'\n      CROSS JOIN (SELECT (NULL::%s).*) AS new',
                                                  history_track._qualified(p_table));
        END IF;
    ELSE
        -- (ROWS frame: row_number() needs no peers, so the window streams
        -- instead of holding every row; PostgreSQL 16 does this by itself.)
        v_from := E'(SELECT pg_catalog.row_number() OVER (ROWS UNBOUNDED PRECEDING) AS pgh_rn, * FROM pgh_old_rows) AS old'
               || E'\n      JOIN (SELECT pg_catalog.row_number() OVER (ROWS UNBOUNDED PRECEDING) AS pgh_rn, * FROM pgh_new_rows) AS new'
               || E'\n        ON old.pgh_rn OPERATOR(pg_catalog.=) new.pgh_rn';
        -- An update is recorded only when a watched column really changed:
        -- compared by binary image, so no type's equality operator runs here,
        -- every type compares (json, point, ...), and 1.0 -> 1.00 is a change.
        -- A changed key is always a change: replay depends on it.
        v_changed := COALESCE(v_tracker.changed,
                              v_cols OPERATOR(pg_catalog.||)
                              ARRAY(SELECT k FROM pg_catalog.unnest(v_key) AS k
                                     WHERE k OPERATOR(pg_catalog.<>) ALL (v_cols)));
        v_moved := pg_catalog.format(
            E'CASE WHEN %1$s THEN %2$s END,\n'
            '           CASE WHEN %1$s THEN (SELECT pg_catalog.nextval(%3$L::regclass)) END',
            pg_catalog.format('pg_catalog.record_image_ne(ROW(%s), ROW(%s))',
                (SELECT pg_catalog.string_agg(pg_catalog.format('old.%I', c), ', ') FROM pg_catalog.unnest(v_key) AS c),
                (SELECT pg_catalog.string_agg(pg_catalog.format('new.%I', c), ', ') FROM pg_catalog.unnest(v_key) AS c)),
            history_track._obj_id_sql(p_table, 'old'),
            pg_catalog.pg_get_serial_sequence(history_track._qualified(v_table.event_table), 'pgh_id'));
        v_where := v_where || pg_catalog.format('pg_catalog.record_image_ne(ROW(%s), ROW(%s))',
            (SELECT pg_catalog.string_agg(pg_catalog.format('old.%I', c), ', ') FROM pg_catalog.unnest(v_changed) AS c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('new.%I', c), ', ') FROM pg_catalog.unnest(v_changed) AS c));
    END IF;

    IF v_tracker.condition IS NOT NULL THEN
        -- Checked by _check_condition() to be exactly one boolean expression.
        v_where := v_where || (E'(\n' || v_tracker.condition || E'\n)');
    END IF;

    -- The default trackers' events are labeled 'revert' while revert_row()
    -- or revert_table() writes (see _context()).
    v_label := CASE WHEN v_tracker.label OPERATOR(pg_catalog.<>) v_tracked OR p_check
                    THEN pg_catalog.quote_literal(v_tracker.label)
                    WHEN p_dynamic THEN pg_catalog.format('COALESCE($3, %L)', v_tracker.label)
                    ELSE pg_catalog.format('COALESCE(pgh_ctx_label, %L)', v_tracker.label) END;

    RETURN pg_catalog.format(
        E'INSERT INTO %s\n'
        '        (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context,\n'
        '         pgh_old_obj_id, pgh_statement_id%s)\n'
        '    SELECT pg_catalog.now(), %s, %L, %s, %s,\n'
        '           %s%s\n'
        '      FROM %s%s',
        history_track._qualified(v_table.event_table),
        (SELECT pg_catalog.string_agg(pg_catalog.format(', %I', c), '') FROM pg_catalog.unnest(v_cols) AS c),
        v_label,
        pg_catalog.upper(p_operation),
        history_track._obj_id_sql(p_table, v_snap),
        v_context,
        v_moved,
        (SELECT pg_catalog.string_agg(pg_catalog.format(', %I.%I', v_snap, c), '') FROM pg_catalog.unnest(v_cols) AS c),
        v_from,
        CASE WHEN pg_catalog.cardinality(v_where) OPERATOR(pg_catalog.>) 0
             THEN E'\n     WHERE ' || pg_catalog.array_to_string(v_where, E'\n       AND ')
             ELSE '' END);
END
$$;

-- Check a tracker's condition before it is compiled into a trigger:
-- it must be one boolean SQL expression over OLD and NEW (nothing can follow
-- it), contain no subquery, and call only non-volatile functions and operators
-- installed by a superuser, because the generated trigger runs it with the
-- privileges of the history's owner.
CREATE FUNCTION history_track._check_condition(p_table regclass, p_label text, p_condition text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fn      regprocedure;
    v_bad     text;
    v_state   text;
    v_message text;
BEGIN
    IF pg_catalog.btrim(p_condition, E' \t\r\n') OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'condition of tracker "%" on table % is empty', p_label, p_table
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a boolean SQL expression over OLD and NEW, or leave condition out.';
    END IF;
    BEGIN
        EXECUTE pg_catalog.format(
            E'CREATE FUNCTION pg_temp.history_track_condition(old %1$s, new %1$s) RETURNS boolean\n'
            'LANGUAGE sql STABLE RETURN (\n%2$s\n)',
            history_track._qualified(p_table), p_condition);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
        IF v_state OPERATOR(pg_catalog.=) '42P13' THEN
            -- "return type mismatch": the expression is not boolean.
            v_state := '42804';
            v_message := 'the condition is not a boolean expression';
        END IF;
        RAISE EXCEPTION 'invalid condition for tracker "%" on table %', p_label, p_table
            USING ERRCODE = v_state,
                  DETAIL = v_message,
                  HINT = pg_catalog.format(
                      'A condition is one boolean SQL expression over the rows OLD and NEW, which have the columns %s.',
                      (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
                         FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid OPERATOR(pg_catalog.=) p_table
                          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped));
    END;
    v_fn := ('pg_temp.history_track_condition(' || history_track._qualified(p_table) || ','
             || history_track._qualified(p_table) || ')')::regprocedure;

    IF (SELECT p.prosqlbody::text FROM pg_catalog.pg_proc AS p WHERE p.oid OPERATOR(pg_catalog.=) v_fn)
       LIKE '%{SUBLINK %' THEN
        v_bad := 'it contains a subquery';
    END IF;

    IF v_bad IS NULL THEN
        -- What the expression calls, directly or through an operator. Built-in
        -- functions are pinned and never appear in pg_depend, so the function
        -- ids are read from the stored expression tree itself.
        WITH body AS (
            SELECT p.prosqlbody::text AS tree FROM pg_catalog.pg_proc AS p WHERE p.oid OPERATOR(pg_catalog.=) v_fn
        ), called AS (
            SELECT m[1]::oid AS fn
              FROM body, pg_catalog.regexp_matches(body.tree, ':(?:funcid|opfuncid|aggfnoid|winfnoid) ([0-9]+)', 'g') AS m
            UNION
            SELECT o.oprcode::oid
              FROM body, pg_catalog.regexp_matches(body.tree, ':opnos? \(?o? ?([0-9 ]+)\)?', 'g') AS m
             CROSS JOIN LATERAL pg_catalog.unnest(pg_catalog.string_to_array(pg_catalog.btrim(m[1]), ' ')) AS x(opno)
              JOIN pg_catalog.pg_operator AS o ON o.oid OPERATOR(pg_catalog.=) x.opno::oid
        )
        SELECT pg_catalog.format('it calls %s function %s',
                                 CASE WHEN p.provolatile OPERATOR(pg_catalog.=) 'v' THEN 'the volatile'
                                      ELSE 'the non-superuser''s' END,
                                 p.oid::regprocedure)
          INTO v_bad
          FROM called
          JOIN pg_catalog.pg_proc AS p ON p.oid OPERATOR(pg_catalog.=) called.fn
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) p.proowner
         WHERE p.provolatile OPERATOR(pg_catalog.=) 'v' OR NOT r.rolsuper
         ORDER BY p.oid
         LIMIT 1;
    END IF;

    IF v_bad IS NULL THEN
        -- Casts to a domain run the domain's checks: only a superuser's domains.
        SELECT pg_catalog.format('it uses the domain %s, owned by a non-superuser', t.oid::regtype)
          INTO v_bad
          FROM pg_catalog.pg_depend AS d
          JOIN pg_catalog.pg_type AS t ON t.oid OPERATOR(pg_catalog.=) d.refobjid
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) t.typowner
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
           AND d.objid OPERATOR(pg_catalog.=) v_fn
           AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::regclass
           AND t.typtype OPERATOR(pg_catalog.=) 'd' AND NOT r.rolsuper
         LIMIT 1;
    END IF;

    EXECUTE pg_catalog.format('DROP FUNCTION %s', v_fn);

    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'condition of tracker "%" on table % is not allowed: %', p_label, p_table, v_bad
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Conditions run inside the history trigger with the privileges of the history''s owner, once per written row.',
                  HINT = 'Use only the rows OLD and NEW, operators and non-volatile built-in functions; no subqueries.';
    END IF;
END
$$;

-- (Re)write the trigger functions and triggers of p_table from the catalog.
-- Every statement is executed once against empty stand-ins for the transition
-- tables first, so any mistake is reported here, not at the application's
-- next write.
CREATE FUNCTION history_track._generate(p_table regclass) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning  -- no "does not exist, skipping" notices
AS $$
DECLARE
    v_table     history_track.tracked_table;
    v_operation text;
    v_tracked   text;      -- the trackers' operation: truncate runs the delete trackers
    v_labels    text[];
    v_label     text;
    v_stmt      text;
    v_check     text;
    v_body      text;
    v_function  text;
    v_trigger   name;
    v_existing  regprocedure;
    v_state     text;
    v_message   text;
    v_detail    text;
    v_relations regclass[] := history_track._relations(p_table);
    v_partitioned boolean := (SELECT c.relkind OPERATOR(pg_catalog.=) 'p' FROM pg_catalog.pg_class AS c
                               WHERE c.oid OPERATOR(pg_catalog.=) p_table);
    v_relation  regclass;
    v_joined    regclass[];
    v_left      regclass[];
    v_replayed  boolean;
BEGIN
    SELECT * INTO STRICT v_table FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table;

    -- Partitions that joined or left the tree since the triggers were last
    -- written (ATTACH / DETACH PARTITION): their rows enter or leave the
    -- table without DML, so they are recorded as a baseline (below).
    v_replayed := history_track._has_default_trackers(p_table);
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger AS tg
                WHERE tg.tgrelid OPERATOR(pg_catalog.=) p_table AND tg.tgname OPERATOR(pg_catalog.=) 'history_track_insert') THEN
        v_joined := ARRAY(SELECT r FROM pg_catalog.unnest(v_relations) AS r
                           WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS tg
                                              WHERE tg.tgrelid OPERATOR(pg_catalog.=) r
                                                AND tg.tgname OPERATOR(pg_catalog.=) 'history_track_insert'));
        v_left := ARRAY(SELECT DISTINCT tg.tgrelid::regclass FROM pg_catalog.pg_trigger AS tg
                         WHERE tg.tgname OPERATOR(pg_catalog.=) 'history_track_insert'
                           AND tg.tgfoid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(
                                   pg_catalog.format('history_track.%I()', pg_catalog.format('_t%s_insert', v_table.table_id)))::oid
                           AND NOT tg.tgrelid::regclass OPERATOR(pg_catalog.=) ANY (v_relations));
        IF v_replayed THEN
            FOREACH v_relation IN ARRAY v_left LOOP
                PERFORM history_track._record_rows(p_table, 'DELETE',
                            pg_catalog.format('ONLY %s AS t', history_track._qualified(v_relation)));
            END LOOP;
            FOREACH v_relation IN ARRAY v_joined LOOP
                PERFORM history_track._record_rows(p_table, 'BASELINE',
                            pg_catalog.format('ONLY %s AS t', history_track._qualified(v_relation)));
            END LOOP;
        END IF;
    END IF;

    -- Empty stand-ins for the transition tables, against which every generated
    -- statement is executed once below.
    IF pg_catalog.to_regclass('pg_temp.pgh_old_rows') IS NOT NULL
       OR pg_catalog.to_regclass('pg_temp.pgh_new_rows') IS NOT NULL THEN
        RAISE EXCEPTION 'this session has a temporary table named pgh_old_rows or pgh_new_rows'
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Drop it, or track the table from another session.';
    END IF;
    EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE pgh_old_rows (LIKE %s)', history_track._qualified(p_table));
    EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE pgh_new_rows (LIKE %s)', history_track._qualified(p_table));

    -- TRUNCATE runs the delete trackers, BEFORE the rows are gone: a truncated
    -- table's rows are recorded like deleted ones (pgh_operation TRUNCATE).
    FOREACH v_operation IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        v_function := pg_catalog.format('history_track.%I', pg_catalog.format('_t%s_%s', v_table.table_id, v_operation));
        v_trigger := ('history_track_' || v_operation)::name;
        v_tracked := CASE v_operation WHEN 'truncate' THEN 'delete' ELSE v_operation END;

        FOREACH v_relation IN ARRAY v_relations LOOP
            SELECT tg.tgfoid::regprocedure INTO v_existing
              FROM pg_catalog.pg_trigger AS tg
             WHERE tg.tgrelid OPERATOR(pg_catalog.=) v_relation AND tg.tgname OPERATOR(pg_catalog.=) v_trigger;
            IF v_existing IS NOT NULL AND v_existing::text OPERATOR(pg_catalog.<>) (v_function || '()') THEN
                RAISE EXCEPTION 'table % already has a trigger named "%"', v_relation, v_trigger
                    USING ERRCODE = 'duplicate_object',
                          DETAIL = pg_catalog.format('It calls %s, not history_track''s generated function.', v_existing),
                          HINT = 'Rename that trigger (ALTER TRIGGER ... RENAME TO ...), then track the table again.';
            END IF;
        END LOOP;

        -- Labeled trackers in label order, then the default tracker: so a
        -- labeled event comes before its statement's default event, and its
        -- diff (history_events) is against the row as it was before.
        SELECT pg_catalog.array_agg(t.label ORDER BY t.label OPERATOR(pg_catalog.=) v_tracked, t.label)
          INTO v_labels
          FROM history_track.tracker AS t
         WHERE t.table_name OPERATOR(pg_catalog.=) p_table
           AND v_tracked OPERATOR(pg_catalog.=) ANY (t.operations);

        IF v_labels IS NULL THEN
            PERFORM history_track._drop_triggers(v_function, NULL);
            EXECUTE pg_catalog.format('DROP FUNCTION IF EXISTS %s()', v_function);
            CONTINUE;
        END IF;

        v_body := '';
        FOREACH v_label IN ARRAY v_labels LOOP
            v_stmt := history_track._tracker_sql(p_table, v_label, v_operation);
            v_check := history_track._tracker_sql(p_table, v_label, v_operation, true);
            BEGIN
                EXECUTE v_check;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                                        v_detail = PG_EXCEPTION_DETAIL;
                RAISE EXCEPTION 'tracker "%" on table % cannot record % events: %', v_label, p_table, v_operation, v_message
                    USING ERRCODE = v_state,
                          DETAIL = COALESCE(NULLIF(v_detail, ''), 'The generated statement failed when checked.'),
                          HINT = 'Check the tracker''s condition and options; history_trackers shows them.';
            END;
            IF v_operation OPERATOR(pg_catalog.=) 'truncate' AND v_partitioned THEN
                -- One function for every relation of the tree: it reads the
                -- relation being truncated, named at run time.
                v_stmt := pg_catalog.format(
                    E'EXECUTE pg_catalog.replace(%L,\n        ''pgh_truncated_table'', TG_RELID::pg_catalog.regclass::pg_catalog.text)\n'
                    '        USING pgh_ctx_id, pgh_ctx, pgh_ctx_label',
                    history_track._tracker_sql(p_table, v_label, v_operation, false, true));
            END IF;
            v_body := v_body || '    ' || v_stmt || E';\n';
        END LOOP;

        -- PL/pgSQL plans each statement once per session, sized for the
        -- transition tables of the first call. Pairing old and new rows of an
        -- update by a nested loop would be chosen for a one-row update and then
        -- reused for a million-row one, quadratically: forbid it, so the pair
        -- join is a hash or merge join whatever the first call looked like.
        -- No JIT: the forbidden plan's penalty cost would make PostgreSQL
        -- compile every single-row update's statement (~150 ms each), and a
        -- cached plan's JIT decision would follow the first call's size anyway.
        -- work_mem 64MB for updates: the pair join's hash table holds the old
        -- rows; with the default 4MB a 200k-row update spills it to disk
        -- (measured: the whole update ~15% slower). Memory is only taken as
        -- the rows need it. (A session that set work_mem higher gets 64MB
        -- inside this function.)
        EXECUTE pg_catalog.format(
            E'CREATE OR REPLACE FUNCTION %s() RETURNS trigger\n'
            'LANGUAGE plpgsql SECURITY DEFINER\n'
            'SET search_path = pg_catalog, pg_temp\n'
            'SET jit = off\n'
            '%s'
            'AS %L',
            v_function,
            CASE WHEN v_operation OPERATOR(pg_catalog.=) 'update' THEN E'SET enable_nestloop = off\nSET work_mem = ''64MB''\n' ELSE '' END,
            E'#variable_conflict use_column\n'
            || pg_catalog.format(E'-- Generated by history_track for %s (%s); do not edit: the catalog is the source.\n',
                                 history_track._qualified(p_table), v_operation)
            || E'DECLARE\n'
            || E'    pgh_ctx_id    uuid;\n'
            || E'    pgh_ctx       jsonb;\n'
            || E'    pgh_ctx_label text;\n'
            || E'BEGIN\n'
            -- The context, once per statement; the full read only when one is set.
            || E'    IF history_track._context_is_set() THEN\n'
            || E'        SELECT c.context_id, c.context, c.label INTO pgh_ctx_id, pgh_ctx, pgh_ctx_label\n'
            || E'          FROM history_track._context() AS c;\n'
            || E'    END IF;\n'
            || v_body || E'    RETURN NULL;\nEND\n');
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', v_function);
        EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s() IS %L', v_function,
            pg_catalog.format('history_track: records %s events of %s; generated, do not edit',
                              v_operation, history_track._qualified(p_table)));

        FOREACH v_relation IN ARRAY v_relations LOOP
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS tg
                            WHERE tg.tgrelid OPERATOR(pg_catalog.=) v_relation
                              AND tg.tgname OPERATOR(pg_catalog.=) v_trigger) THEN
                EXECUTE pg_catalog.format(
                    'CREATE TRIGGER %I %s %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                    v_trigger,
                    CASE v_operation WHEN 'truncate' THEN 'BEFORE' ELSE 'AFTER' END,
                    pg_catalog.upper(v_operation), history_track._qualified(v_relation),
                    CASE v_operation WHEN 'insert' THEN 'REFERENCING NEW TABLE AS pgh_new_rows'
                                     WHEN 'delete' THEN 'REFERENCING OLD TABLE AS pgh_old_rows'
                                     WHEN 'update' THEN 'REFERENCING OLD TABLE AS pgh_old_rows NEW TABLE AS pgh_new_rows'
                                     ELSE '' END,
                    v_function);
            END IF;
        END LOOP;
        -- Relations that left the tree (a detached partition) are no longer recorded.
        PERFORM history_track._drop_triggers(v_function, v_relations);
    END LOOP;
    DROP TABLE pg_temp.pgh_old_rows, pg_temp.pgh_new_rows;
    PERFORM history_track._protect_event_table(v_table.event_table);
    PERFORM history_track._assert_triggers(p_table);
END
$$;

-- Drop the triggers that call p_function, on any relation but p_keep.
CREATE FUNCTION history_track._drop_triggers(p_function text, p_keep regclass[]) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trigger record;
BEGIN
    FOR v_trigger IN
        SELECT tg.tgname, tg.tgrelid::regclass AS rel FROM pg_catalog.pg_trigger AS tg
         WHERE tg.tgfoid OPERATOR(pg_catalog.=) (SELECT pg_catalog.to_regprocedure(p_function || '()'))::oid
           AND NOT (tg.tgrelid::regclass OPERATOR(pg_catalog.=) ANY (COALESCE(p_keep, '{}')))
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', v_trigger.tgname, history_track._qualified(v_trigger.rel));
    END LOOP;
END
$$;

-- Remove every generated trigger and function of a table.
CREATE FUNCTION history_track._drop_generated(p_table_id integer) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning  -- no "does not exist, skipping" notices
AS $$
DECLARE
    v_operation text;
    v_function  text;
BEGIN
    FOREACH v_operation IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        v_function := pg_catalog.format('history_track.%I', pg_catalog.format('_t%s_%s', p_table_id, v_operation));
        PERFORM history_track._drop_triggers(v_function, NULL);
        EXECUTE pg_catalog.format('DROP FUNCTION IF EXISTS %s()', v_function);
    END LOOP;
END
$$;
-- The public API: track_table, untrack_table, history_trackers.

-- Every catalog change starts here: changes are serialised (two sessions
-- tracking at once cannot race), tbl must be given, and the caller must own it.
CREATE FUNCTION history_track._begin_change(p_table regclass, p_call text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('history_track catalog'));
    IF p_table IS NULL THEN
        RAISE EXCEPTION 'tbl must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = pg_catalog.format('Pass the table, e.g. %s(''orders'').', p_call);
    END IF;
    PERFORM history_track._assert_owner(p_table);
END
$$;

-- Refuse names that are not columns of p_table.
CREATE FUNCTION history_track._assert_columns(p_table regclass, p_names text[], p_option text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_missing text[];
BEGIN
    SELECT pg_catalog.array_agg(n ORDER BY o) INTO v_missing
      FROM pg_catalog.unnest(p_names) WITH ORDINALITY AS u(n, o)
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid OPERATOR(pg_catalog.=) p_table
                          AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
                          AND a.attname::text OPERATOR(pg_catalog.=) u.n);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', v_missing[1], p_table
            USING ERRCODE = 'undefined_column',
                  DETAIL = pg_catalog.format('%s names columns the table does not have: %s.',
                                             p_option, pg_catalog.array_to_string(v_missing, ', ')),
                  HINT = pg_catalog.format('%s takes column names exactly as the table spells them (case matters).', p_option);
    END IF;
END
$$;

-- Create the event table of p_table, or bring an existing one up to date with
-- the table's columns. Returns the event table.
CREATE FUNCTION history_track._prepare_event_table(p_table regclass, p_columns name[], p_exclude name[])
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event     regclass;
    v_schema    name;
    v_name      name;
    v_owner     name;
    v_objtype   text := history_track._obj_id_type(p_table);
    v_column    record;
    v_existing  text;
BEGIN
    SELECT t.event_table INTO v_event FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table;

    IF v_event IS NULL THEN
        SELECT n.nspname, c.relname, r.rolname INTO v_schema, v_name, v_owner
          FROM pg_catalog.pg_class AS c
          JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
          JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) c.relowner
         WHERE c.oid OPERATOR(pg_catalog.=) p_table;
        v_name := history_track._event_table_name(v_name);
        IF EXISTS (SELECT FROM pg_catalog.pg_class AS c
                    WHERE c.relname OPERATOR(pg_catalog.=) v_name
                      AND c.relnamespace OPERATOR(pg_catalog.=) (SELECT n.oid FROM pg_catalog.pg_namespace AS n
                                                                  WHERE n.nspname OPERATOR(pg_catalog.=) v_schema)) THEN
            RAISE EXCEPTION 'cannot create event table %.%: a relation of that name exists',
                            pg_catalog.quote_ident(v_schema), pg_catalog.quote_ident(v_name)
                USING ERRCODE = 'duplicate_table',
                      DETAIL = pg_catalog.format('The history of %s is kept in %I.%I, and that name is taken by a relation history_track did not create.',
                                                 p_table, v_schema, v_name),
                      HINT = 'Rename or drop that relation, then track the table again.';
        END IF;

        EXECUTE pg_catalog.format(
            E'CREATE TABLE %I.%I (\n'
            '    pgh_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n'
            '    pgh_created_at timestamptz NOT NULL,\n'
            '    pgh_label text NOT NULL,\n'
            '    pgh_operation text NOT NULL,\n'
            '    pgh_obj_id %s NOT NULL,\n'
            '    pgh_context_id uuid,\n'
            '    pgh_context jsonb,\n'
            '    pgh_old_obj_id %s,\n'
            '    pgh_statement_id bigint%s\n)',
            v_schema, v_name, v_objtype, v_objtype,
            (SELECT pg_catalog.string_agg(pg_catalog.format(E',\n    %I %s%s', m.attname, m.type_sql, m.collation_sql), '')
               FROM history_track._mirrored_columns(p_table, p_columns, p_exclude) AS m));
        v_event := pg_catalog.format('%I.%I', v_schema, v_name)::regclass;
        -- Serves a row's history (all events of one object, in order), the
        -- previous event each diff compares with, and one row's replay.
        EXECUTE pg_catalog.format('CREATE INDEX ON %s (pgh_obj_id, pgh_id)', history_track._qualified(v_event));
        -- Serves following a row back through a key change and replay's
        -- "did this key leave the table": partial, so only the rare updates
        -- that change a key pay for it.
        EXECUTE pg_catalog.format('CREATE INDEX ON %s (pgh_old_obj_id, pgh_id) WHERE pgh_old_obj_id IS NOT NULL',
                                  history_track._qualified(v_event));
        -- Serves history_context_events() (a context id carries its time) and
        -- time ranges. BRIN: events are appended in time order, and it costs
        -- the writes next to nothing.
        EXECUTE pg_catalog.format('CREATE INDEX ON %s USING brin (pgh_created_at)',
                                  history_track._qualified(v_event));
        PERFORM history_track._protect_event_table(v_event);
        EXECUTE pg_catalog.format('COMMENT ON TABLE %s IS %L', history_track._qualified(v_event),
                                  pg_catalog.format('History of %s, written by history_track; append-only',
                                                    history_track._qualified(p_table)));
        IF v_owner OPERATOR(pg_catalog.<>) CURRENT_USER THEN
            EXECUTE pg_catalog.format('GRANT SELECT ON %s TO %I WITH GRANT OPTION',
                                      history_track._qualified(v_event), v_owner);
        END IF;
        INSERT INTO history_track.tracked_table (table_name, event_table, columns, exclude, tracked_by)
        VALUES (p_table, v_event, p_columns, COALESCE(p_exclude, '{}'), history_track._caller());
        RETURN v_event;
    END IF;

    -- The event table exists: every mirrored column must be there with the same type.
    SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO v_existing
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid OPERATOR(pg_catalog.=) v_event AND a.attname OPERATOR(pg_catalog.=) 'pgh_obj_id';
    IF v_existing OPERATOR(pg_catalog.<>) v_objtype THEN
        RAISE EXCEPTION 'primary key of table % no longer matches its event table %', p_table, v_event
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = pg_catalog.format('pgh_obj_id is %s, the key now needs %s.', v_existing, v_objtype),
                  HINT = 'Keep the old history under another name (ALTER TABLE ... RENAME), untrack with drop_events => true, and track again.';
    END IF;
    FOR v_column IN
        SELECT m.attname, m.type_sql, m.collation_sql
          FROM history_track._mirrored_columns(p_table, p_columns, p_exclude) AS m
    LOOP
        SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) INTO v_existing
          FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid OPERATOR(pg_catalog.=) v_event AND a.attname OPERATOR(pg_catalog.=) v_column.attname
           AND NOT a.attisdropped;
        IF NOT FOUND THEN
            EXECUTE pg_catalog.format('ALTER TABLE %s ADD COLUMN %I %s%s', history_track._qualified(v_event),
                                      v_column.attname, v_column.type_sql, v_column.collation_sql);
        ELSIF v_existing OPERATOR(pg_catalog.<>) v_column.type_sql THEN
            RAISE EXCEPTION 'column "%" of table % is %, but its event table % has %',
                            v_column.attname, p_table, v_column.type_sql, v_event, v_existing
                USING ERRCODE = 'datatype_mismatch',
                      DETAIL = 'The column''s type changed while the table was not tracked.',
                      HINT = 'Keep the old history under another name (ALTER TABLE ... RENAME), untrack with drop_events => true, and track again.';
        END IF;
    END LOOP;
    RETURN v_event;
END
$$;

CREATE FUNCTION @extschema@.track_table(
    tbl        regclass,
    label      text   DEFAULT NULL,
    operations text[] DEFAULT NULL,
    condition  text   DEFAULT NULL,
    changed    text[] DEFAULT NULL,
    snapshot   text   DEFAULT NULL,
    columns    text[] DEFAULT NULL,
    exclude    text[] DEFAULT NULL,
    baseline   boolean DEFAULT false
) RETURNS regclass
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: the event table and the trigger functions are created as,
-- and owned by, the extension's owner, so that the history belongs neither to
-- the application nor to the table owner. The caller must own tbl (checked first).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_label      text   := track_table.label;
    v_operations text[] := track_table.operations;
    v_condition  text   := track_table.condition;
    v_changed    name[] := track_table.changed::name[];
    v_snapshot   text   := pg_catalog.lower(track_table.snapshot);
    v_columns    name[] := track_table.columns::name[];
    v_exclude    name[] := track_table.exclude::name[];
    v_stored     history_track.tracked_table;
    v_event      regclass;
    v_want       history_track.tracker[] := '{}'::history_track.tracker[];
    v_tracker    history_track.tracker;
    v_old        history_track.tracker;
    v_op         text;
    v_bad        text;
BEGIN
    PERFORM history_track._begin_change(tbl, 'track_table');
    PERFORM history_track._assert_trackable(tbl);

    -- Options.
    IF v_operations IS NOT NULL THEN
        SELECT o INTO v_bad FROM pg_catalog.unnest(v_operations) AS o
         WHERE o IS NULL OR pg_catalog.lower(o) OPERATOR(pg_catalog.<>) ALL (ARRAY['insert', 'update', 'delete'])
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'unknown operation %', COALESCE(pg_catalog.quote_literal(v_bad), 'NULL')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'operations is a non-empty subset of {insert,update,delete}.';
        ELSIF pg_catalog.cardinality(v_operations) OPERATOR(pg_catalog.=) 0 THEN
            RAISE EXCEPTION 'operations must not be empty'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'operations is a non-empty subset of {insert,update,delete}; leave it out for all three.';
        END IF;
        -- Lower case, no duplicates, in the order insert, update, delete.
        v_operations := ARRAY(SELECT o FROM pg_catalog.unnest(ARRAY['insert', 'update', 'delete']) AS o
                               WHERE o OPERATOR(pg_catalog.=) ANY (SELECT pg_catalog.lower(x)
                                                                     FROM pg_catalog.unnest(v_operations) AS x));
    ELSE
        v_operations := ARRAY['insert', 'update', 'delete'];
    END IF;

    IF v_snapshot IS NOT NULL AND v_snapshot OPERATOR(pg_catalog.<>) ALL (ARRAY['old', 'new']) THEN
        RAISE EXCEPTION 'unknown snapshot %', pg_catalog.quote_literal(track_table.snapshot)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'snapshot is ''old'' (the row before the change) or ''new'' (the row after it).';
    END IF;
    IF v_snapshot OPERATOR(pg_catalog.=) 'old' AND 'insert' OPERATOR(pg_catalog.=) ANY (v_operations) THEN
        RAISE EXCEPTION 'snapshot ''old'' cannot be stored for inserts'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'An inserted row has no old version.',
                  HINT = 'Leave insert out of operations, or use snapshot => ''new''.';
    END IF;
    IF v_snapshot OPERATOR(pg_catalog.=) 'new' AND 'delete' OPERATOR(pg_catalog.=) ANY (v_operations) THEN
        RAISE EXCEPTION 'snapshot ''new'' cannot be stored for deletes'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A deleted row has no new version.',
                  HINT = 'Leave delete out of operations, or use snapshot => ''old''.';
    END IF;
    IF v_changed IS NOT NULL THEN
        IF NOT 'update' OPERATOR(pg_catalog.=) ANY (v_operations) THEN
            RAISE EXCEPTION 'changed applies to updates, but operations has no update'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Add update to operations, or leave changed out.';
        END IF;
        IF pg_catalog.cardinality(v_changed) OPERATOR(pg_catalog.=) 0 THEN
            RAISE EXCEPTION 'changed must name at least one column'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Leave changed out to record an update when any tracked column changed.';
        END IF;
        PERFORM history_track._assert_columns(tbl, v_changed::text[], 'changed');
    END IF;
    IF v_columns IS NOT NULL THEN
        PERFORM history_track._assert_columns(tbl, v_columns::text[], 'columns');
        SELECT a.attname::text INTO v_bad FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid OPERATOR(pg_catalog.=) tbl AND a.attname OPERATOR(pg_catalog.=) ANY (v_columns)
           AND a.attgenerated OPERATOR(pg_catalog.=) 'v'
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'column "%" of table % is a virtual generated column', v_bad, tbl
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'Virtual generated columns have no stored value to record; they follow from the columns they are computed from.',
                      HINT = 'Leave it out of columns; mirror the columns it is computed from.';
        END IF;
    END IF;
    IF v_exclude IS NOT NULL THEN
        PERFORM history_track._assert_columns(tbl, v_exclude::text[], 'exclude');
    END IF;

    -- Column choice is fixed when the event table is created.
    SELECT * INTO v_stored FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) tbl;
    IF FOUND THEN
        IF (v_columns IS NOT NULL
                AND (v_stored.columns IS NULL
                     OR NOT (v_columns OPERATOR(pg_catalog.@>) v_stored.columns
                             AND v_columns OPERATOR(pg_catalog.<@) v_stored.columns)))
           OR (v_exclude IS NOT NULL
                AND NOT (v_exclude OPERATOR(pg_catalog.@>) v_stored.exclude
                         AND v_exclude OPERATOR(pg_catalog.<@) v_stored.exclude)) THEN
            RAISE EXCEPTION 'event table % already mirrors a different set of columns', v_stored.event_table
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = pg_catalog.format('It was created with columns => %L, exclude => %L.',
                                                 v_stored.columns, v_stored.exclude),
                      HINT = 'Leave columns and exclude out to keep the event table as it is, or untrack with drop_events => true and track again.';
        END IF;
        v_columns := v_stored.columns;
        v_exclude := v_stored.exclude;
    END IF;
    IF NOT EXISTS (SELECT FROM history_track._mirrored_columns(tbl, v_columns, COALESCE(v_exclude, '{}'))) THEN
        RAISE EXCEPTION 'no columns of table % would be recorded', tbl
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'columns and exclude must leave at least one column.';
    END IF;

    -- The trackers this call declares.
    IF v_label IS NULL THEN
        IF v_condition IS NOT NULL OR v_snapshot IS NOT NULL THEN
            RAISE EXCEPTION 'condition and snapshot need a label'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Without a label, track_table() declares the default trackers: insert, update (when a tracked column changed) and delete.',
                      HINT = 'Name the tracker, e.g. track_table(''orders'', label => ''paid'', condition => ...).';
        END IF;
        FOREACH v_op IN ARRAY v_operations LOOP
            v_tracker := ROW(tbl, v_op, ARRAY[v_op], NULL,
                             CASE WHEN v_op OPERATOR(pg_catalog.=) 'update' THEN v_changed END,
                             CASE WHEN v_op OPERATOR(pg_catalog.=) 'delete' THEN 'old' ELSE 'new' END,
                             history_track._caller(), pg_catalog.now());
            v_want := v_want OPERATOR(pg_catalog.||) v_tracker;
        END LOOP;
    ELSE
        IF pg_catalog.btrim(v_label) OPERATOR(pg_catalog.=) '' THEN
            RAISE EXCEPTION 'label must not be empty'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name the event, e.g. label => ''paid''; leave label out for the default trackers.';
        END IF;
        IF v_label OPERATOR(pg_catalog.=) ANY (ARRAY['insert', 'update', 'delete']) THEN
            RAISE EXCEPTION 'label "%" is reserved for the default tracker', v_label
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = pg_catalog.format('Leave label out and pass operations => ''{%s}'' for the default tracker, or choose another label.', v_label);
        END IF;
        IF v_label OPERATOR(pg_catalog.=) ANY (history_track._state_labels()) THEN
            RAISE EXCEPTION 'label "%" is reserved', v_label
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Events labeled insert, update, delete, baseline and revert are what history_as_of() replays.',
                      HINT = 'Choose another label.';
        END IF;
        IF v_condition IS NOT NULL THEN
            PERFORM history_track._check_condition(tbl, v_label, v_condition);
        END IF;
        v_tracker := ROW(tbl, v_label, v_operations, v_condition, v_changed,
                         COALESCE(v_snapshot,
                                  CASE WHEN v_operations OPERATOR(pg_catalog.=) ARRAY['delete'] THEN 'old'
                                       WHEN NOT 'delete' OPERATOR(pg_catalog.=) ANY (v_operations) THEN 'new' END),
                         history_track._caller(), pg_catalog.now());
        v_want := ARRAY[v_tracker];
    END IF;

    v_event := history_track._prepare_event_table(tbl, v_columns, v_exclude);

    -- Declaring a tracker that exists is harmless; redefining one is refused.
    FOREACH v_tracker IN ARRAY v_want LOOP
        SELECT * INTO v_old FROM history_track.tracker AS t
         WHERE t.table_name OPERATOR(pg_catalog.=) tbl AND t.label OPERATOR(pg_catalog.=) v_tracker.label;
        IF NOT FOUND THEN
            INSERT INTO history_track.tracker SELECT (v_tracker).*;
        ELSIF (v_old.operations, v_old.condition, v_old.changed::text[], v_old.snapshot)
              IS DISTINCT FROM (v_tracker.operations, v_tracker.condition, v_tracker.changed::text[], v_tracker.snapshot) THEN
            RAISE EXCEPTION 'tracker "%" already exists on table % with another definition', v_tracker.label, tbl
                USING ERRCODE = 'duplicate_object',
                      DETAIL = pg_catalog.format('It has operations %s, condition %s, changed %s, snapshot %s.',
                                                 v_old.operations, COALESCE(v_old.condition, 'none'),
                                                 COALESCE(v_old.changed::text, 'any column'), COALESCE(v_old.snapshot, 'per operation')),
                      HINT = pg_catalog.format('Remove it first with untrack_table(%L, label => %L), or choose another label.',
                                               tbl::text, v_tracker.label);
        END IF;
    END LOOP;

    IF baseline THEN
        IF NOT history_track._has_default_trackers(tbl) THEN
            RAISE EXCEPTION 'baseline needs the default trackers of table %', tbl
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'A baseline is the starting point history_as_of() replays the insert, update and delete events from.',
                      HINT = pg_catalog.format('Call SELECT track_table(%L, baseline => true) without label.', tbl::text);
        END IF;
        IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
            RAISE EXCEPTION 'baseline needs READ COMMITTED isolation'
                USING ERRCODE = 'invalid_transaction_state',
                      DETAIL = 'The baseline must see every write committed before the table was locked; a snapshot taken earlier in the transaction would miss some.',
                      HINT = 'Call track_table(..., baseline => true) in a READ COMMITTED transaction (the default).';
        END IF;
    END IF;

    PERFORM history_track._generate(tbl);
    IF baseline THEN
        PERFORM history_track._record_baseline(tbl);
    END IF;
    RETURN v_event;
END
$$;

COMMENT ON FUNCTION @extschema@.track_table(regclass, text, text[], text, text[], text, text[], text[], boolean) IS
    'Record the history of a table: create its event table and the default trackers, or (with label) one named tracker; baseline => true also records every row as it is';

CREATE FUNCTION @extschema@.untrack_table(
    tbl         regclass,
    label       text    DEFAULT NULL,
    drop_events boolean DEFAULT false
) RETURNS void
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: the trigger functions and event tables belong to the
-- extension's owner. The caller must own tbl (checked first).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_label  text := untrack_table.label;
    v_stored history_track.tracked_table;
BEGIN
    PERFORM history_track._begin_change(tbl, 'untrack_table');

    SELECT * INTO v_stored FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) tbl;
    IF NOT FOUND THEN
        RAISE NOTICE 'table % is not tracked, skipping', tbl;
        RETURN;
    END IF;

    IF v_label IS NOT NULL THEN
        IF drop_events THEN
            RAISE EXCEPTION 'drop_events cannot be combined with label'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'All trackers of a table write to one event table.',
                      HINT = 'Remove the tracker with untrack_table(tbl, label => ...); drop the history with untrack_table(tbl, drop_events => true).';
        END IF;
        DELETE FROM history_track.tracker AS t
         WHERE t.table_name OPERATOR(pg_catalog.=) tbl AND t.label OPERATOR(pg_catalog.=) v_label;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'tracker "%" does not exist on table %', v_label, tbl
                USING ERRCODE = 'undefined_object',
                      HINT = 'SELECT label FROM history_trackers WHERE table_name = ''...''::regclass lists them.';
        END IF;
    ELSE
        DELETE FROM history_track.tracker AS t WHERE t.table_name OPERATOR(pg_catalog.=) tbl;
    END IF;

    IF EXISTS (SELECT FROM history_track.tracker AS t WHERE t.table_name OPERATOR(pg_catalog.=) tbl) THEN
        PERFORM history_track._generate(tbl);
    ELSE
        PERFORM history_track._drop_generated(v_stored.table_id);
    END IF;

    IF drop_events THEN
        -- Forget the table first: the sql_drop event trigger refuses to drop
        -- the event table of a table it still knows as tracked.
        DELETE FROM history_track.tracked_table AS t WHERE t.table_name OPERATOR(pg_catalog.=) tbl;
        EXECUTE pg_catalog.format('DROP TABLE %s', history_track._qualified(v_stored.event_table));
    END IF;
END
$$;

COMMENT ON FUNCTION @extschema@.untrack_table(regclass, text, boolean) IS
    'Stop recording a table''s history (or, with label, remove one tracker); drop_events => true also drops its event table';

CREATE VIEW @extschema@.history_trackers AS
SELECT t.table_name,
       tt.event_table,
       t.label,
       t.operations,
       t.condition,
       t.snapshot,
       t.changed
  FROM history_track.tracker AS t
  JOIN history_track.tracked_table AS tt ON tt.table_name OPERATOR(pg_catalog.=) t.table_name
 ORDER BY t.table_name::text, pg_catalog.array_position(ARRAY['insert', 'update', 'delete'], t.label), t.label;

COMMENT ON VIEW @extschema@.history_trackers IS
    'One row per tracker: the table, its event table, label, operations, condition, stored row (snapshot) and watched columns (changed)';
-- Events recorded by a call rather than by a trigger.
--
-- Manual events: history for things no DML shows ("exported", "emailed",
-- "approved"). The event stores the row as it is now, with pgh_operation
-- 'MANUAL'; history_as_of() does not replay them.
--
-- Baselines: track_table(..., baseline => true) records every row as it is
-- (label 'baseline', pgh_operation 'BASELINE'), so that history_as_of() is
-- complete from that moment, also for rows written before tracking began.
-- A partition attached to a tracked partitioned table brings its rows in the
-- same way, and one detached takes them out (label 'baseline', 'DELETE').

CREATE FUNCTION @extschema@.record_history_event(
    tbl     regclass,
    key     text,
    label   text,
    context jsonb DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: the event table belongs to the extension's owner; the
-- caller must own tbl or be allowed to UPDATE it (checked first).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_label  text := record_history_event.label;
    v_table  history_track.tracked_table;
    v_caller name := history_track._caller();
    v_cols   name[];
    v_obj    text := history_track._obj_id_sql(tbl, 't');
    v_id     bigint;
BEGIN
    IF tbl IS NULL OR key IS NULL THEN
        RAISE EXCEPTION 'tbl and key must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the table and the primary key of the row, e.g. record_history_event(''orders'', 42, ''exported'').';
    END IF;
    IF NOT (pg_catalog.pg_has_role(v_caller, (SELECT c.relowner FROM pg_catalog.pg_class AS c
                                                WHERE c.oid OPERATOR(pg_catalog.=) tbl), 'USAGE')
            OR pg_catalog.has_table_privilege(v_caller, tbl, 'UPDATE')) THEN
        RAISE EXCEPTION 'permission denied to record events of table %', tbl
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('Role "%s" neither owns the table nor may UPDATE it.', v_caller),
                  HINT = 'Manual events can be recorded by the roles that may change the table.';
    END IF;
    SELECT * INTO v_table FROM history_track.tracked_table AS t WHERE t.table_name OPERATOR(pg_catalog.=) tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no event table', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Track it first: SELECT track_table(%L).', tbl::text);
    END IF;
    IF v_label IS NULL OR pg_catalog.btrim(v_label) OPERATOR(pg_catalog.=) ''
       OR v_label OPERATOR(pg_catalog.=) ANY (history_track._state_labels()) THEN
        RAISE EXCEPTION 'invalid label for a manual event: %', COALESCE(pg_catalog.quote_literal(v_label), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name what happened, e.g. ''exported''; insert, update, delete, baseline and revert are reserved.';
    END IF;
    IF context IS NOT NULL AND pg_catalog.jsonb_typeof(context) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'context must be a JSON object, not %', pg_catalog.jsonb_typeof(context)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an object, e.g. ''{"reason": "monthly export"}'', or leave context out.';
    END IF;

    -- The mirrored columns the event table has (a column added to the table
    -- since it was tracked is not recorded until it is tracked again).
    SELECT pg_catalog.array_agg(m.attname) INTO v_cols
      FROM history_track._mirrored_columns(tbl, v_table.columns, v_table.exclude) AS m
     WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid OPERATOR(pg_catalog.=) v_table.event_table
                      AND a.attname OPERATOR(pg_catalog.=) m.attname AND NOT a.attisdropped);

    EXECUTE pg_catalog.format(
        E'INSERT INTO %s (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context%s)\n'
        ' SELECT pg_catalog.now(), $2, ''MANUAL'', %s,\n'
        '        CASE WHEN c.context IS NOT NULL OR $3 IS NOT NULL THEN history_track._context_id() END,\n'
        '        CASE WHEN c.context IS NOT NULL OR $3 IS NOT NULL\n'
        '             THEN COALESCE(c.context, ''{}'') OPERATOR(pg_catalog.||) COALESCE($3, ''{}'') END%s\n'
        '   FROM %s AS t CROSS JOIN history_track._context() AS c\n'
        '  WHERE %s\n'
        ' RETURNING pgh_id',
        history_track._qualified(v_table.event_table),
        (SELECT pg_catalog.string_agg(pg_catalog.format(', %I', c), '') FROM pg_catalog.unnest(v_cols) AS c),
        v_obj,
        (SELECT pg_catalog.string_agg(pg_catalog.format(', t.%I', c), '') FROM pg_catalog.unnest(v_cols) AS c),
        history_track._qualified(tbl),
        history_track._key_match_sql(tbl, v_obj, '$1'))
    INTO v_id USING key, v_label, context;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'table % has no row with key %', tbl, key
            USING ERRCODE = 'no_data_found',
                  HINT = 'Pass the key as pgh_obj_id shows it: the value for a one-column key, a JSON array such as [1, "x"] for a composite key.';
    END IF;
    RETURN v_id;
END
$$;

CREATE FUNCTION @extschema@.record_history_event(
    tbl     regclass,
    key     anyelement,
    label   text,
    context jsonb DEFAULT NULL
) RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.record_history_event(tbl, pg_catalog.format('%s', key), label, context)
$$;

COMMENT ON FUNCTION @extschema@.record_history_event(regclass, text, text, jsonb) IS
    'Record a manual event (pgh_operation MANUAL) for one row of a tracked table, storing the row as it is now';
COMMENT ON FUNCTION @extschema@.record_history_event(regclass, anyelement, text, jsonb) IS
    'Record a manual event for one row, its key given as a value of any type';

-- Write baseline events for p_table: the rows of p_from (a FROM item aliased
-- t, shaped like p_table) as events with label 'baseline' and p_operation.
-- $1 and $2 inside p_from are the replay's parameters (now(), the state labels).
CREATE FUNCTION history_track._record_rows(p_table regclass, p_operation text, p_from text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table history_track.tracked_table;
    v_cols  name[];
    v_count bigint;
BEGIN
    SELECT * INTO STRICT v_table FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table;
    SELECT pg_catalog.array_agg(m.attname) INTO v_cols
      FROM history_track._mirrored_columns(p_table, v_table.columns, v_table.exclude) AS m;
    EXECUTE pg_catalog.format(
        E'INSERT INTO %s (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context%s)\n'
        ' SELECT pg_catalog.now(), ''baseline'', %L, %s, c.context_id, c.context%s\n'
        '   FROM history_track._context() AS c, %s',
        history_track._qualified(v_table.event_table),
        (SELECT pg_catalog.string_agg(pg_catalog.format(', %I', c), '') FROM pg_catalog.unnest(v_cols) AS c),
        p_operation,
        history_track._obj_id_sql(p_table, 't'),
        (SELECT pg_catalog.string_agg(pg_catalog.format(', t.%I', c), '') FROM pg_catalog.unnest(v_cols) AS c),
        p_from)
    USING pg_catalog.now(), history_track._state_labels();
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

-- Record the baseline of p_table: every row as it is now (BASELINE), and every
-- key the history still shows but the table no longer has (a DELETE labeled
-- baseline: rows deleted while the table was not tracked). Writes are locked
-- out meanwhile, so no write can fall between the rows read and the events
-- written.
CREATE FUNCTION history_track._record_baseline(p_table regclass) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key   name[] := history_track._key_columns(p_table);
BEGIN
    EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', history_track._qualified(p_table));
    RETURN history_track._record_rows(p_table, 'DELETE', pg_catalog.format(
               '(%s) AS t WHERE NOT EXISTS (SELECT FROM %s%s AS r WHERE (%s) = (%s))',
               history_track._replay_sql(p_table, false),
               history_track._only(p_table), history_track._qualified(p_table),
               (SELECT pg_catalog.string_agg(pg_catalog.format('r.%I', k), ', ') FROM pg_catalog.unnest(v_key) AS k),
               (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', k), ', ') FROM pg_catalog.unnest(v_key) AS k)))
         OPERATOR(pg_catalog.+)
           history_track._record_rows(p_table, 'BASELINE', pg_catalog.format('%s%s AS t',
               history_track._only(p_table), history_track._qualified(p_table)));
END
$$;
-- Reading history: the one place history is replayed (history_as_of) and
-- diffed (history_events).
--
-- The events that carry a row's state are those of the default trackers
-- (labels insert, update, delete), the baseline and reverts
-- (_state_labels()). Replaying them in pgh_id order gives the table at any
-- moment: pgh_id is the order in which the writes to one row happened, since
-- a row's writers queue behind one another on its lock, and each statement's
-- events are written before its transaction commits.
--
-- A key that changes is followed by pgh_old_obj_id and pgh_statement_id (see
-- _tracker_sql): the update that moved a row from key A to key B is B's event,
-- and also ends A, unless another row took key A in the same statement (a swap).
--
-- These functions are SECURITY DEFINER to read the catalog; they read an event
-- table only when the caller may SELECT from it, and they run no code a type's
-- owner defined (see _key_match_sql).

-- The catalog row of a tracked table whose history the caller may read.
CREATE FUNCTION history_track._readable(p_table regclass, p_call text) RETURNS history_track.tracked_table
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table history_track.tracked_table;
BEGIN
    SELECT * INTO v_table FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no history', p_table
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Track it first: SELECT track_table(%L).', p_table::text);
    END IF;
    IF NOT pg_catalog.has_table_privilege(history_track._caller(), v_table.event_table, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for the history of table %', p_table
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = pg_catalog.format('%s needs SELECT on %s.', p_call, v_table.event_table),
                  HINT = pg_catalog.format('The table''s owner may grant it: GRANT SELECT ON %s TO ...;', v_table.event_table);
    END IF;
    RETURN v_table;
END
$$;

-- The replay: a query returning p_table's rows as they were at $1 (built
-- from the events labeled $2), with the table's columns in its order. With
-- p_one_key, only the row whose key is $3 (text, see _key_match_sql).
-- For each key, the last event that touched it wins: an event stored under
-- the key (its row then, or its deletion), or an update that moved the row
-- away from the key, unless the same statement moved another row onto it.
-- Columns the event table does not have are NULL. With p_ids, the pgh_id of
-- each row's event instead (what prune_history() keeps).
CREATE FUNCTION history_track._replay_sql(p_table regclass, p_one_key boolean, p_ids boolean DEFAULT false) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table history_track.tracked_table;
    v_event text;
    v_cols  text;
BEGIN
    SELECT * INTO STRICT v_table FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table;
    v_event := history_track._qualified(v_table.event_table);
    SELECT pg_catalog.string_agg(
               CASE WHEN ea.attname IS NULL
                    THEN pg_catalog.format('NULL::%s', pg_catalog.format_type(a.atttypid, a.atttypmod))
                    WHEN (ea.atttypid, ea.atttypmod) = (a.atttypid, a.atttypmod)
                    THEN pg_catalog.format('(s.pgh_row).%I', a.attname)
                    ELSE pg_catalog.format('(s.pgh_row).%I::%s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod))
               END, ', ' ORDER BY a.attnum)
      INTO v_cols
      FROM pg_catalog.pg_attribute AS a
      LEFT JOIN pg_catalog.pg_attribute AS ea
        ON ea.attrelid OPERATOR(pg_catalog.=) v_table.event_table
       AND ea.attname OPERATOR(pg_catalog.=) a.attname AND NOT ea.attisdropped
     WHERE a.attrelid OPERATOR(pg_catalog.=) p_table AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
    RETURN pg_catalog.format(
        E'SELECT %4$s\n'
        '  FROM (SELECT DISTINCT ON (x.pgh_key) x.pgh_alive, x.pgh_row\n'
        '          FROM (SELECT e.pgh_obj_id AS pgh_key, e.pgh_id AS pgh_order,\n'
        '                       e.pgh_operation OPERATOR(pg_catalog.<>) ALL (''{DELETE,TRUNCATE}'') AS pgh_alive,\n'
        '                       e AS pgh_row\n'
        '                  FROM %1$s AS e\n'
        '                 WHERE e.pgh_created_at OPERATOR(pg_catalog.<=) $1\n'
        '                   AND e.pgh_label OPERATOR(pg_catalog.=) ANY ($2)%2$s\n'
        '                UNION ALL\n'
        '                SELECT d.pgh_old_obj_id, d.pgh_id, false, NULL::%1$s\n'
        '                  FROM %1$s AS d\n'
        '                 WHERE d.pgh_old_obj_id IS NOT NULL\n'
        '                   AND d.pgh_created_at OPERATOR(pg_catalog.<=) $1\n'
        '                   AND d.pgh_label OPERATOR(pg_catalog.=) ANY ($2)%3$s\n'
        '                   AND NOT EXISTS (SELECT FROM %1$s AS a\n'
        '                                    WHERE a.pgh_obj_id = d.pgh_old_obj_id\n'
        '                                      AND a.pgh_statement_id OPERATOR(pg_catalog.=) d.pgh_statement_id)\n'
        '               ) AS x\n'
        '         ORDER BY x.pgh_key, x.pgh_order DESC) AS s\n'
        ' WHERE s.pgh_alive',
        v_event,
        CASE WHEN p_one_key THEN E'\n                   AND ' || history_track._key_match_sql(p_table, 'e.pgh_obj_id', '$3') ELSE '' END,
        CASE WHEN p_one_key THEN E'\n                   AND ' || history_track._key_match_sql(p_table, 'd.pgh_old_obj_id', '$3') ELSE '' END,
        CASE WHEN p_ids THEN '(s.pgh_row).pgh_id' ELSE v_cols END);
END
$$;

CREATE FUNCTION @extschema@.history_as_of(tbl anyelement, ts timestamptz, key text DEFAULT NULL)
RETURNS SETOF anyelement
LANGUAGE plpgsql STABLE
-- SECURITY DEFINER: to read the catalog (the event table is read only when
-- the caller may SELECT from it).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel   regclass;
BEGIN
    SELECT NULLIF(t.typrelid, 0)::regclass INTO v_rel
      FROM pg_catalog.pg_type AS t WHERE t.oid OPERATOR(pg_catalog.=) pg_catalog.pg_typeof(tbl);
    IF v_rel IS NULL OR NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c
                                     WHERE c.oid OPERATOR(pg_catalog.=) v_rel
                                       AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}')) THEN
        RAISE EXCEPTION 'history_as_of takes a row of a table, not %', pg_catalog.pg_typeof(tbl)
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Pass NULL cast to the table''s row type: SELECT * FROM history_as_of(NULL::orders, ''2026-01-01'').';
    END IF;
    IF ts IS NULL THEN
        RAISE EXCEPTION 'ts must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the moment to go back to, e.g. now() - interval ''1 day''.';
    END IF;
    PERFORM history_track._readable(v_rel, 'history_as_of');
    IF EXISTS (SELECT FROM history_track.tracker AS t WHERE t.table_name OPERATOR(pg_catalog.=) v_rel)
       AND NOT history_track._has_default_trackers(v_rel) THEN
        RAISE EXCEPTION 'table % cannot be replayed: it does not have all three default trackers', v_rel
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'history_as_of replays the events of the insert, update and delete trackers.',
                  HINT = pg_catalog.format('Add them with SELECT track_table(%L); history is complete from then on (baseline => true records the rows as they are).', v_rel::text);
    END IF;
    RETURN QUERY EXECUTE history_track._replay_sql(v_rel, key IS NOT NULL)
        USING ts, history_track._state_labels(), key;
END
$$;

COMMENT ON FUNCTION @extschema@.history_as_of(anyelement, timestamptz, text) IS
    'The rows of a tracked table as they were at a moment (or, with key, the one row with that key): SELECT * FROM history_as_of(NULL::orders, ts)';

-- What changed, as {"column": [before, after]}: for a delete, every column
-- that was removed; with no state before (an insert, the first event), every
-- column's first value.
CREATE FUNCTION history_track._diff(p_operation text, p_data jsonb, p_before jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE
           WHEN p_operation OPERATOR(pg_catalog.=) ANY ('{DELETE,TRUNCATE}') THEN
               (SELECT COALESCE(pg_catalog.jsonb_object_agg(n.key, pg_catalog.jsonb_build_array(n.value, NULL)), '{}')
                  FROM pg_catalog.jsonb_each(p_data) AS n)
           ELSE
               (SELECT COALESCE(pg_catalog.jsonb_object_agg(n.key, pg_catalog.jsonb_build_array(o.value, n.value)), '{}')
                  FROM pg_catalog.jsonb_each(p_data) AS n
                  LEFT JOIN pg_catalog.jsonb_each(p_before) AS o ON o.key OPERATOR(pg_catalog.=) n.key
                 WHERE o.value IS DISTINCT FROM n.value)
           END
$$;

-- Events, across every event table the caller may read, oldest first, each
-- with its row (data) and what changed against the row's previous state (diff).
-- Filters: tbl (one table), key (one row of tbl: every event under that key,
-- followed back through key changes, and the updates that moved a row away
-- from it), context_id (one transaction's events), since/until (pgh_created_at),
-- last (only the last N events of each table, still oldest first).
-- Each filter is served by an index, so no event table is scanned whole for
-- a row's or a context's events, or for the last N.
CREATE FUNCTION @extschema@.history_events(
    tbl        regclass    DEFAULT NULL,
    key        text        DEFAULT NULL,
    context_id uuid        DEFAULT NULL,
    since      timestamptz DEFAULT NULL,
    until      timestamptz DEFAULT NULL,
    last       integer     DEFAULT NULL
) RETURNS TABLE (
    table_name     regclass,
    pgh_id         bigint,
    pgh_created_at timestamptz,
    pgh_label      text,
    pgh_operation  text,
    pgh_obj_id     jsonb,
    pgh_context_id uuid,
    pgh_context    jsonb,
    data           jsonb,
    diff           jsonb
)
LANGUAGE plpgsql STABLE
-- SECURITY DEFINER: to read the catalog; an event table is only read when the
-- caller may SELECT from it.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key     text        := history_events.key;
    v_context uuid        := history_events.context_id;
    v_caller  name        := history_track._caller();
    v_table   history_track.tracked_table;
    v_event   text;
    v_source  text;
    v_where   text[];
    v_old     text[];
BEGIN
    IF v_key IS NOT NULL AND tbl IS NULL THEN
        RAISE EXCEPTION 'key needs tbl'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the table too: history_events(''orders'', key => ''42'').';
    END IF;
    IF tbl IS NOT NULL THEN
        PERFORM history_track._readable(tbl, 'history_events');
    END IF;
    IF last OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'last must not be negative'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass how many of the latest events to return, or leave last out for all.';
    END IF;

    FOR v_table IN
        SELECT t.* FROM history_track.tracked_table AS t
         WHERE (tbl IS NULL OR t.table_name OPERATOR(pg_catalog.=) tbl)
           AND pg_catalog.has_table_privilege(v_caller, t.event_table, 'SELECT')
         ORDER BY t.event_table::text
    LOOP
        v_event := history_track._qualified(v_table.event_table);
        IF v_key IS NULL THEN
            v_source := v_event;
        ELSE
            -- The key's events, and those of the keys its rows had before
            -- they moved to it (each up to the statement that moved it); then
            -- the updates that moved a row away from the key.
            v_source := pg_catalog.format(
                E'(SELECT DISTINCT ON (u.pgh_id) u.* FROM (\n'
                '    WITH RECURSIVE chain (pgh_key, pgh_bound) AS (\n'
                '        SELECT k.pgh_obj_id, NULL::bigint\n'
                '          FROM (SELECT e.pgh_obj_id FROM %1$s AS e WHERE %2$s LIMIT 1) AS k\n'
                '        UNION\n'
                '        SELECT e.pgh_old_obj_id, e.pgh_statement_id\n'
                '          FROM chain AS c\n'
                '          JOIN %1$s AS e ON e.pgh_obj_id = c.pgh_key\n'
                '               AND e.pgh_id OPERATOR(pg_catalog.<) COALESCE(c.pgh_bound, 9223372036854775807)\n'
                '         WHERE e.pgh_old_obj_id IS NOT NULL\n'
                '    )\n'
                '    SELECT e.* FROM chain AS c\n'
                '      JOIN %1$s AS e ON e.pgh_obj_id = c.pgh_key\n'
                '           AND e.pgh_id OPERATOR(pg_catalog.<) COALESCE(c.pgh_bound, 9223372036854775807)\n'
                '    UNION ALL\n'
                '    SELECT e.* FROM %1$s AS e WHERE %3$s\n'
                '  ) AS u ORDER BY u.pgh_id)',
                v_event,
                history_track._key_match_sql(tbl, 'e.pgh_obj_id', '$1'),
                history_track._key_match_sql(tbl, 'e.pgh_old_obj_id', '$1'));
        END IF;
        v_where := '{}';
        IF v_context IS NOT NULL THEN
            -- A context id carries its transaction's start time, which is
            -- every one of its events' pgh_created_at: the BRIN index finds them.
            v_where := v_where || ARRAY[
                'e.pgh_created_at OPERATOR(pg_catalog.>=) (history_track._context_time($2) OPERATOR(pg_catalog.-) interval ''1 millisecond'')',
                'e.pgh_created_at OPERATOR(pg_catalog.<) (history_track._context_time($2) OPERATOR(pg_catalog.+) interval ''2 milliseconds'')',
                'e.pgh_context_id OPERATOR(pg_catalog.=) $2'];
        END IF;
        IF since IS NOT NULL THEN
            v_where := v_where || 'e.pgh_created_at OPERATOR(pg_catalog.>=) $3'::text;
        END IF;
        IF until IS NOT NULL THEN
            v_where := v_where || 'e.pgh_created_at OPERATOR(pg_catalog.<) $4'::text;
        END IF;
        -- Trackers storing the old row of an update have no diff of their own.
        SELECT pg_catalog.array_agg(t.label) INTO v_old FROM history_track.tracker AS t
         WHERE t.table_name OPERATOR(pg_catalog.=) v_table.table_name AND t.snapshot OPERATOR(pg_catalog.=) 'old';

        -- The state before an event: the row's last state event before it
        -- (before its statement, when the event moved the row to a new key);
        -- none for an insert, or after a delete.
        RETURN QUERY EXECUTE pg_catalog.format(
            E'SELECT * FROM (\n'
            'SELECT $5, e.pgh_id, e.pgh_created_at, e.pgh_label, e.pgh_operation,\n'
            '       pg_catalog.to_jsonb(e.pgh_obj_id), e.pgh_context_id, e.pgh_context, d.data,\n'
            '       CASE WHEN e.pgh_operation OPERATOR(pg_catalog.=) ''UPDATE''\n'
            '                 AND e.pgh_label OPERATOR(pg_catalog.=) ANY ($7) THEN NULL\n'
            '            ELSE history_track._diff(e.pgh_operation, d.data, p.data) END\n'
            '  FROM %1$s AS e\n'
            ' CROSS JOIN LATERAL (SELECT pg_catalog.to_jsonb(e) OPERATOR(pg_catalog.-) $8 AS data) AS d\n'
            '  LEFT JOIN LATERAL (\n'
            '       SELECT CASE WHEN p.pgh_operation OPERATOR(pg_catalog.<>) ALL (''{DELETE,TRUNCATE}'')\n'
            '                   THEN pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.-) $8 END AS data\n'
            '         FROM %2$s AS p\n'
            '        WHERE p.pgh_obj_id = COALESCE(e.pgh_old_obj_id, e.pgh_obj_id)\n'
            '          AND p.pgh_id OPERATOR(pg_catalog.<) COALESCE(e.pgh_statement_id, e.pgh_id)\n'
            '          AND p.pgh_label OPERATOR(pg_catalog.=) ANY ($6)\n'
            '          AND e.pgh_operation OPERATOR(pg_catalog.<>) ''INSERT''\n'
            '        ORDER BY p.pgh_id DESC LIMIT 1) AS p ON true\n'
            '%3$s\n'
            ' ORDER BY e.pgh_id DESC LIMIT $9) AS x\n'
            ' ORDER BY 2',
            v_source, v_event,
            CASE WHEN pg_catalog.cardinality(v_where) OPERATOR(pg_catalog.>) 0
                 THEN ' WHERE ' || pg_catalog.array_to_string(v_where, E'\n   AND ') ELSE '' END)
        USING v_key, v_context, since, until, v_table.table_name, history_track._state_labels(),
              COALESCE(v_old, '{}'), history_track._pgh_columns(), last;
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.history_events(regclass, text, uuid, timestamptz, timestamptz, integer) IS
    'Events across the event tables the caller may read, with their row (data) and what changed (diff); filter by table, key, context id, time and the last N';

-- Every event of one context (one transaction's context id): history_events
-- filtered by context, with each event's event table.
CREATE FUNCTION @extschema@.history_context_events(context_id uuid)
RETURNS TABLE (
    table_name     regclass,
    event_table    regclass,
    pgh_id         bigint,
    pgh_created_at timestamptz,
    pgh_label      text,
    pgh_operation  text,
    pgh_obj_id     jsonb,
    pgh_context    jsonb,
    data           jsonb
)
LANGUAGE sql STABLE
-- SECURITY DEFINER: to read the catalog for the event tables' names.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.table_name, t.event_table, e.pgh_id, e.pgh_created_at, e.pgh_label, e.pgh_operation,
           e.pgh_obj_id, e.pgh_context, e.data
      FROM @extschema@.history_events(context_id => history_context_events.context_id) AS e
      JOIN history_track.tracked_table AS t ON t.table_name OPERATOR(pg_catalog.=) e.table_name
     ORDER BY t.event_table::text, e.pgh_id
$$;

COMMENT ON FUNCTION @extschema@.history_context_events(uuid) IS
    'Every event of one context, across the event tables the caller may read';
-- Revert: put a row, or a whole table, back the way history says it was.
--
-- The writes are the caller's own (these functions are SECURITY INVOKER, so
-- the caller needs the privileges the writes need, and row-level security
-- applies), made in one transaction, and recorded like any other write by
-- the default trackers, labeled 'revert' (history_track.label, see
-- _context()): a revert is history too, and can itself be reverted. The label
-- is set with set_config() around the writes rather than by a SET clause:
-- PostgreSQL 15+ lets only superusers put a custom setting in a function's SET
-- clause, and history_track can be installed by a role that is not one
-- (history-track install --no-extension).

-- The statements a revert runs, checked: p_table is tracked with the default
-- trackers, and its event table holds every column a revert must write.
-- Returns one statement that deletes the rows (all, or the one with key $2)
-- the source does not have, updates those that differ and inserts those
-- missing, and returns how many rows it wrote. p_source is the SQL of the
-- rows to restore, shaped like p_table.
-- SECURITY DEFINER: to read the catalog; it returns SQL text only, which the
-- caller runs with its own privileges.
CREATE FUNCTION history_track._revert_sql(p_table regclass, p_source text, p_one_key boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   history_track.tracked_table;
    v_missing text[];
    v_key     name[] := history_track._key_columns(p_table);
    v_insert  name[];
    v_set     name[];
BEGIN
    v_table := history_track._readable(p_table, 'a revert');
    IF NOT history_track._has_default_trackers(p_table) THEN
        RAISE EXCEPTION 'table % cannot be reverted: it does not have all three default trackers', p_table
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'A revert replays the insert, update and delete events, and is itself recorded by them.',
                  HINT = pg_catalog.format('Add them with SELECT track_table(%L).', p_table::text);
    END IF;
    -- Every column a revert writes must be in the history.
    SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) INTO v_missing
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid OPERATOR(pg_catalog.=) p_table AND a.attnum OPERATOR(pg_catalog.>) 0
       AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) ''
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS ea
                        WHERE ea.attrelid OPERATOR(pg_catalog.=) v_table.event_table
                          AND ea.attname OPERATOR(pg_catalog.=) a.attname AND NOT ea.attisdropped);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'table % cannot be reverted: its history does not record column "%"', p_table, v_missing[1]
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Event table %s has no column %s.', v_table.event_table,
                                             pg_catalog.array_to_string(v_missing, ', ')),
                  HINT = 'Only a table whose event table mirrors every column can be reverted (it was tracked with columns or exclude); restore those rows by hand from history_as_of().';
    END IF;

    SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum),
           pg_catalog.array_agg(a.attname ORDER BY a.attnum)
               FILTER (WHERE a.attname OPERATOR(pg_catalog.<>) ALL (v_key) AND a.attidentity OPERATOR(pg_catalog.<>) 'a')
      INTO v_insert, v_set
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid OPERATOR(pg_catalog.=) p_table AND a.attnum OPERATOR(pg_catalog.>) 0
       AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) '';

    -- One statement, reading the source once: the deletes, updates and
    -- inserts touch different keys (no ON CONFLICT, which a DEFERRABLE key
    -- could not serve).
    RETURN pg_catalog.format(
        E'WITH r AS MATERIALIZED (%2$s),\n'
        ' d AS (DELETE FROM %9$s%1$s AS t WHERE %3$sNOT EXISTS (SELECT FROM r WHERE (%4$s) = (%5$s)) RETURNING 1),\n'
        ' u AS (%6$s),\n'
        ' i AS (INSERT INTO %1$s (%7$s) OVERRIDING SYSTEM VALUE SELECT %8$s FROM r\n'
        '        WHERE NOT EXISTS (SELECT FROM %9$s%1$s AS t WHERE (%4$s) = (%5$s)) RETURNING 1)\n'
        'SELECT (SELECT pg_catalog.count(*) FROM d) OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM u)\n'
        '       OPERATOR(pg_catalog.+) (SELECT pg_catalog.count(*) FROM i)',
        history_track._qualified(p_table),
        p_source,
        CASE WHEN p_one_key
             THEN history_track._key_match_sql(p_table, history_track._obj_id_sql(p_table, 't'), '$2') || ' AND '
             ELSE '' END,
        (SELECT pg_catalog.string_agg(pg_catalog.format('r.%I', k), ', ') FROM pg_catalog.unnest(v_key) AS k),
        (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', k), ', ') FROM pg_catalog.unnest(v_key) AS k),
        CASE WHEN v_set IS NULL THEN 'SELECT 1 WHERE false'
             ELSE pg_catalog.format(
                 'UPDATE %s%s AS t SET (%s) = ROW(%s) FROM r WHERE (%s) = (%s) AND pg_catalog.record_image_ne(ROW(%s), ROW(%s)) RETURNING 1',
                 history_track._only(p_table), history_track._qualified(p_table),
                 (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') FROM pg_catalog.unnest(v_set) AS c),
                 (SELECT pg_catalog.string_agg(pg_catalog.format('r.%I', c), ', ') FROM pg_catalog.unnest(v_set) AS c),
                 (SELECT pg_catalog.string_agg(pg_catalog.format('r.%I', k), ', ') FROM pg_catalog.unnest(v_key) AS k),
                 (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', k), ', ') FROM pg_catalog.unnest(v_key) AS k),
                 (SELECT pg_catalog.string_agg(pg_catalog.format('t.%I', c), ', ') FROM pg_catalog.unnest(v_set) AS c),
                 (SELECT pg_catalog.string_agg(pg_catalog.format('r.%I', c), ', ') FROM pg_catalog.unnest(v_set) AS c))
        END,
        (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') FROM pg_catalog.unnest(v_insert) AS c),
        (SELECT pg_catalog.string_agg(pg_catalog.format('r.%I', c), ', ') FROM pg_catalog.unnest(v_insert) AS c),
        history_track._only(p_table));
END
$$;

-- The event table of p_table, for revert_row(tbl, event): its rows as p_table's
-- rows, and the key of an event as text. SECURITY DEFINER to read the catalog.
CREATE FUNCTION history_track._event_row_sql(p_table regclass, OUT row_sql text, OUT key_sql text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table history_track.tracked_table := history_track._readable(p_table, 'revert_row');
BEGIN
    row_sql := pg_catalog.format(
        'SELECT %s FROM %s AS e WHERE e.pgh_id OPERATOR(pg_catalog.=) $3 AND e.pgh_operation OPERATOR(pg_catalog.<>) ALL (''{DELETE,TRUNCATE}'')',
        (SELECT pg_catalog.string_agg(CASE WHEN a.attgenerated OPERATOR(pg_catalog.=) ''
                                           THEN pg_catalog.format('e.%I', a.attname)
                                           ELSE pg_catalog.format('NULL::%s AS %I', pg_catalog.format_type(a.atttypid, a.atttypmod), a.attname)
                                      END, ', ' ORDER BY a.attnum)
           FROM pg_catalog.pg_attribute AS a
          WHERE a.attrelid OPERATOR(pg_catalog.=) p_table AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped),
        history_track._qualified(v_table.event_table));
    key_sql := pg_catalog.format(
        'SELECT pg_catalog.format(''%%s'', e.pgh_obj_id) FROM %s AS e WHERE e.pgh_id OPERATOR(pg_catalog.=) $1',
        history_track._qualified(v_table.event_table));
END
$$;

CREATE FUNCTION @extschema@.revert_table(tbl regclass, ts timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_label text := pg_catalog.current_setting('history_track.label', true);
    v_sql   text;
    v_count bigint;
BEGIN
    IF tbl IS NULL OR ts IS NULL THEN
        RAISE EXCEPTION 'tbl and ts must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the table and the moment to go back to: revert_table(''orders'', now() - interval ''1 hour'').';
    END IF;
    v_sql := history_track._revert_sql(tbl,
        pg_catalog.format('SELECT * FROM @extschema@.history_as_of(NULL::%s, $1)', tbl), false);
    -- No write may come between the replay and the writes that restore it.
    EXECUTE pg_catalog.format('LOCK TABLE %s IN EXCLUSIVE MODE', tbl);
    PERFORM pg_catalog.set_config('history_track.label', 'revert', true);   -- the writes below are a revert
    EXECUTE v_sql INTO v_count USING ts;
    PERFORM pg_catalog.set_config('history_track.label', COALESCE(v_label, ''), true);
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION @extschema@.revert_table(regclass, timestamptz) IS
    'Restore a tracked table to its state at a moment; the writes are recorded with label revert; returns the number of rows written';

CREATE FUNCTION @extschema@.revert_row(tbl regclass, key text, ts timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_label text := pg_catalog.current_setting('history_track.label', true);
    v_sql   text;
    v_count bigint;
BEGIN
    IF tbl IS NULL OR key IS NULL OR ts IS NULL THEN
        RAISE EXCEPTION 'tbl, key and ts must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the table, the row''s key and the moment: revert_row(''orders'', ''42'', now() - interval ''1 hour'').';
    END IF;
    v_sql := history_track._revert_sql(tbl,
        pg_catalog.format('SELECT * FROM @extschema@.history_as_of(NULL::%s, $1, $2)', tbl), true);
    PERFORM pg_catalog.set_config('history_track.label', 'revert', true);   -- the writes below are a revert
    EXECUTE v_sql INTO v_count USING ts, key;
    PERFORM pg_catalog.set_config('history_track.label', COALESCE(v_label, ''), true);
    RETURN v_count;
END
$$;

CREATE FUNCTION @extschema@.revert_row(tbl regclass, key anyelement, ts timestamptz) RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.revert_row(tbl, pg_catalog.format('%s', key), ts)
$$;

CREATE FUNCTION @extschema@.revert_row(tbl regclass, event bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_label text := pg_catalog.current_setting('history_track.label', true);
    v_event record;
    v_key   text;
    v_sql   text;
    v_count bigint;
BEGIN
    IF tbl IS NULL OR event IS NULL THEN
        RAISE EXCEPTION 'tbl and event must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the table and the pgh_id of the event to go back to.';
    END IF;
    v_event := history_track._event_row_sql(tbl);
    EXECUTE v_event.key_sql INTO v_key USING event;
    IF v_key IS NULL THEN
        RAISE EXCEPTION 'table % has no event %', tbl, event
            USING ERRCODE = 'no_data_found',
                  HINT = 'Pass the pgh_id of one of the table''s events: history_events(tbl, key => ...) lists a row''s.';
    END IF;
    v_sql := history_track._revert_sql(tbl, v_event.row_sql, true);
    PERFORM pg_catalog.set_config('history_track.label', 'revert', true);   -- the writes below are a revert
    EXECUTE v_sql INTO v_count USING NULL::timestamptz, v_key, event;
    PERFORM pg_catalog.set_config('history_track.label', COALESCE(v_label, ''), true);
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION @extschema@.revert_row(regclass, text, timestamptz) IS
    'Restore one row (by key) to its state at a moment: rewritten, re-inserted or deleted; recorded with label revert';
COMMENT ON FUNCTION @extschema@.revert_row(regclass, anyelement, timestamptz) IS
    'Restore one row, its key given as a value of any type, to its state at a moment';
COMMENT ON FUNCTION @extschema@.revert_row(regclass, bigint) IS
    'Restore one row to the state an event recorded (a delete event: delete the row); recorded with label revert';
-- Lifecycle: following DDL on tracked tables and event tables.
--
-- sql_drop: dropping an event table while its table is tracked is refused;
-- dropping a tracked table forgets it (its trackers and generated functions go,
-- its event table stays, as an ordinary table the extension no longer writes).

CREATE FUNCTION history_track._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql
-- SECURITY DEFINER: the catalog and the generated functions belong to the
-- extension's owner, whoever drops the table.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_dropped oid[];
    v_row     record;
BEGIN
    -- While DROP EXTENSION runs, the catalog itself is among the dropped objects.
    IF pg_catalog.to_regclass('history_track.tracked_table') IS NULL THEN
        RETURN;
    END IF;
    -- A history trigger dropped by hand (DROP TRIGGER) from a table that is
    -- still tracked: refused. (untrack_table() and _generate() first take the
    -- tracker out of the catalog, so their drops pass.)
    IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() AS d
                WHERE d.object_type OPERATOR(pg_catalog.=) 'trigger'
                  AND d.object_identity LIKE 'history\_track\_%') THEN
        FOR v_row IN
            SELECT t.table_name FROM history_track.tracked_table AS t
             WHERE EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) t.table_name)
               AND EXISTS (SELECT FROM history_track.tracker AS k WHERE k.table_name OPERATOR(pg_catalog.=) t.table_name)
        LOOP
            PERFORM history_track._assert_triggers(v_row.table_name);
        END LOOP;
    END IF;

    SELECT pg_catalog.array_agg(d.objid) INTO v_dropped
      FROM pg_catalog.pg_event_trigger_dropped_objects() AS d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass AND d.objsubid OPERATOR(pg_catalog.=) 0;
    IF v_dropped IS NULL THEN
        RETURN;
    END IF;
    -- A dropped event table's hash chain goes with it.
    DELETE FROM history_track.chain_link AS l WHERE l.event_table::oid OPERATOR(pg_catalog.=) ANY (v_dropped);
    DELETE FROM history_track.chain AS c WHERE c.event_table::oid OPERATOR(pg_catalog.=) ANY (v_dropped);

    FOR v_row IN
        SELECT t.table_name::oid AS tbl, t.event_table::oid AS ev, t.table_id
          FROM history_track.tracked_table AS t
         WHERE t.event_table::oid OPERATOR(pg_catalog.=) ANY (v_dropped)
            OR t.table_name::oid OPERATOR(pg_catalog.=) ANY (v_dropped)
    LOOP
        IF v_row.ev OPERATOR(pg_catalog.=) ANY (v_dropped)
           AND NOT v_row.tbl OPERATOR(pg_catalog.=) ANY (v_dropped)
           AND EXISTS (SELECT FROM history_track.tracker AS k WHERE k.table_name::oid OPERATOR(pg_catalog.=) v_row.tbl) THEN
            RAISE EXCEPTION 'cannot drop event table %: table % is tracked',
                            (SELECT d.object_identity FROM pg_catalog.pg_event_trigger_dropped_objects() AS d
                              WHERE d.objid OPERATOR(pg_catalog.=) v_row.ev AND d.objsubid OPERATOR(pg_catalog.=) 0
                              LIMIT 1),
                            v_row.tbl::regclass
                USING ERRCODE = 'dependent_objects_still_exist',
                      DETAIL = 'The table''s triggers write to it.',
                      HINT = pg_catalog.format('Use untrack_table(%L, drop_events => true) to stop tracking and drop the history.',
                                               v_row.tbl::regclass::text);
        END IF;
        -- The table or its event table is gone: forget it.
        DELETE FROM history_track.tracked_table AS t WHERE t.table_name::oid OPERATOR(pg_catalog.=) v_row.tbl;
        PERFORM history_track._drop_generated(v_row.table_id);
    END LOOP;
END
$$;

CREATE EVENT TRIGGER history_track_sql_drop ON sql_drop
    EXECUTE FUNCTION history_track._on_sql_drop();

-- ALTER TABLE on a tracked table is followed (ddl_command_start and _end):
--   ADD COLUMN      the event table gains the column (when all columns are
--                   mirrored), the triggers record it;
--   RENAME COLUMN   the event table's column is renamed; the trackers' changed
--                   lists and conditions follow the new name;
--   DROP COLUMN     the event table keeps the column and its history (new
--                   events store NULL there); refused while a tracker's changed
--                   list or condition uses the column;
--   ALTER ... TYPE  the event table's column changes type too, when every
--                   recorded value survives the cast unchanged (checked by a
--                   round trip), between PostgreSQL's own types; else refused;
--   RENAME TO, SET SCHEMA   tracking goes on (the event table keeps its name);
--   a primary key change is refused (pgh_obj_id is the key).
-- Refusing raises an error in ddl_command_end, so the whole ALTER TABLE is
-- rolled back and nothing is lost. The trigger functions are regenerated
-- after every ALTER TABLE of a tracked table.
--
-- The start trigger remembers every tracked table's columns by attnum (that is
-- how a rename is told from a drop and an add). Nothing holds the conditions
-- during the ALTER (a view over the table would make PostgreSQL refuse to
-- change the type of a column it uses); after it, each condition is checked
-- against the table as it now is, and a renamed column is followed by
-- _condition_renamed().

-- A condition rewritten for the columns p_table has renamed since p_before
-- (see _on_ddl_start), or NULL when it cannot be. PostgreSQL does the
-- rewriting: the condition becomes a temporary view over a stand-in table with
-- the old column names (and the current types), the stand-in's columns are
-- renamed as the ALTER did, and the view's query is printed back (PostgreSQL
-- prints the aliases old and new as old_1 and new_1). The text is only taken
-- if it parses back to the very same query.
CREATE FUNCTION history_track._condition_renamed(p_table regclass, p_before jsonb, p_condition text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_columns text;
    v_column  record;
    v_def     text;
    v_body    text;
    -- The condition over the stand-in, as a view: (view name, condition).
    v_view    text := E'CREATE TEMPORARY VIEW %I AS\n'
                      'SELECT FROM pg_temp.history_track_stand_in AS old, pg_temp.history_track_stand_in AS new WHERE (\n%s\n)';
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', c.value ->> 'name',
                                                   CASE WHEN a.attisdropped
                                                        THEN pg_catalog.format_type((c.value ->> 'type')::oid, (c.value ->> 'typmod')::integer)
                                                        ELSE pg_catalog.format_type(a.atttypid, a.atttypmod) END),
                                 ', ' ORDER BY c.key::integer)
      INTO v_columns
      FROM pg_catalog.jsonb_each(p_before -> 'columns') AS c
      JOIN pg_catalog.pg_attribute AS a
        ON a.attrelid OPERATOR(pg_catalog.=) p_table AND a.attnum OPERATOR(pg_catalog.=) c.key::int2;
    EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE history_track_stand_in (%s)', v_columns);
    BEGIN
        EXECUTE pg_catalog.format(v_view, 'history_track_condition', p_condition);
        FOR v_column IN
            SELECT c.value ->> 'name' AS before, a.attname AS after
              FROM pg_catalog.jsonb_each(p_before -> 'columns') AS c
              JOIN pg_catalog.pg_attribute AS a
                ON a.attrelid OPERATOR(pg_catalog.=) p_table AND a.attnum OPERATOR(pg_catalog.=) c.key::int2
             WHERE NOT a.attisdropped AND a.attname::text OPERATOR(pg_catalog.<>) (c.value ->> 'name')
        LOOP
            EXECUTE pg_catalog.format('ALTER TABLE pg_temp.history_track_stand_in RENAME COLUMN %I TO %I',
                                      v_column.before, v_column.after);
        END LOOP;
        v_def := pg_catalog.pg_get_viewdef(pg_catalog.to_regclass('pg_temp.history_track_condition'));
        v_body := pg_catalog.regexp_replace(pg_catalog.substring(v_def, '(?s)\sWHERE\s(.*);\s*$'),
                                            '\m(old|new)_1\.', '\1.', 'g');
        EXECUTE pg_catalog.format(v_view, 'history_track_condition_check', v_body);
        IF pg_catalog.pg_get_viewdef(pg_catalog.to_regclass('pg_temp.history_track_condition_check')) IS DISTINCT FROM v_def THEN
            v_body := NULL;
        END IF;
    EXCEPTION WHEN OTHERS THEN
        -- Not expressible over the stand-in: the caller refuses the rename.
        -- (The subtransaction's rollback took the views and renames with it.)
        v_body := NULL;
    END;
    DROP TABLE pg_temp.history_track_stand_in CASCADE;
    RETURN v_body;
END
$$;

CREATE FUNCTION history_track._on_ddl_start() RETURNS event_trigger
LANGUAGE plpgsql
-- SECURITY DEFINER: reads the catalog, whoever runs ALTER TABLE.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('history_track.tracked_table') IS NULL
       OR pg_catalog.current_setting('history_track.following', true) OPERATOR(pg_catalog.=) 'on' THEN
        RETURN;
    END IF;
    PERFORM pg_catalog.set_config('history_track.ddl_before', COALESCE((
        SELECT pg_catalog.jsonb_object_agg(t.table_name::oid::text, pg_catalog.jsonb_build_object(
                   'key', history_track._key_columns(t.table_name),
                   'columns', (SELECT pg_catalog.jsonb_object_agg(a.attnum::text, pg_catalog.jsonb_build_object(
                                          'name', a.attname, 'type', a.atttypid::bigint, 'typmod', a.atttypmod))
                                 FROM pg_catalog.pg_attribute AS a
                                WHERE a.attrelid OPERATOR(pg_catalog.=) t.table_name
                                  AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)))
          FROM history_track.tracked_table AS t
         WHERE EXISTS (SELECT FROM history_track.tracker AS k WHERE k.table_name OPERATOR(pg_catalog.=) t.table_name)
    ), '{}')::text, true);
END
$$;

CREATE FUNCTION history_track._on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql
-- SECURITY DEFINER: the event tables, the catalog and the generated functions
-- belong to the extension's owner, whoever runs ALTER TABLE.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
    v_before jsonb;
    v_table  regclass;
BEGIN
    IF pg_catalog.to_regclass('history_track.tracked_table') IS NULL
       OR pg_catalog.current_setting('history_track.following', true) OPERATOR(pg_catalog.=) 'on' THEN
        RETURN;
    END IF;
    v_before := NULLIF(pg_catalog.current_setting('history_track.ddl_before', true), '')::jsonb;
    PERFORM pg_catalog.set_config('history_track.following', 'on', true);
    FOR v_table IN
        SELECT DISTINCT t.table_name
          FROM pg_catalog.pg_event_trigger_ddl_commands() AS c
          JOIN history_track.tracked_table AS t ON t.table_name::oid OPERATOR(pg_catalog.=) c.objid
         WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
           AND EXISTS (SELECT FROM history_track.tracker AS k WHERE k.table_name OPERATOR(pg_catalog.=) t.table_name)
    LOOP
        PERFORM history_track._follow_table(v_table, v_before OPERATOR(pg_catalog.->) (v_table::oid::text));
    END LOOP;
    -- A partition created in, attached to or detached from the tree of a
    -- tracked partitioned table: its triggers are added or removed.
    FOR v_table IN
        SELECT DISTINCT t.table_name
          FROM pg_catalog.pg_event_trigger_ddl_commands() AS c
          JOIN history_track.tracked_table AS t
            ON t.table_name::oid OPERATOR(pg_catalog.=) pg_catalog.pg_partition_root(c.objid::regclass)::oid
         WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass
           AND c.objid OPERATOR(pg_catalog.<>) t.table_name::oid
           AND c.objsubid OPERATOR(pg_catalog.=) 0
           AND history_track._is_recording(t.table_name)
    LOOP
        PERFORM history_track._generate(v_table);
    END LOOP;
    PERFORM pg_catalog.set_config('history_track.following', '', true);
    PERFORM pg_catalog.set_config('history_track.ddl_before', '', true);
END
$$;

-- Bring p_table's event table, catalog and triggers up to date with an ALTER
-- TABLE, given its columns before (see _on_ddl_start), or refuse it.
CREATE FUNCTION history_track._follow_table(p_table regclass, p_before jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   history_track.tracked_table;
    v_event   text;
    v_key     name[] := history_track._key_columns(p_table);
    v_old     record;
    v_now     record;
    v_tracker record;
    v_renamed boolean := false;
    v_dropped boolean := false;
    v_body    text;
    v_state   text;
    v_detail  text;
BEGIN
    -- Only tables whose triggers are in place: pg_restore's ALTER TABLE ...
    -- ADD CONSTRAINT, before the triggers are back, is left alone.
    IF p_before IS NULL OR NOT history_track._is_recording(p_table) THEN
        RETURN;
    END IF;
    SELECT * INTO STRICT v_table FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table;
    v_event := history_track._qualified(v_table.event_table);

    IF v_key IS DISTINCT FROM (SELECT pg_catalog.array_agg(k::name) FROM pg_catalog.jsonb_array_elements_text(p_before -> 'key') AS k) THEN
        RAISE EXCEPTION 'cannot change the primary key of tracked table %', p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Every event of the table stores its row''s primary key in pgh_obj_id.',
                  HINT = pg_catalog.format('Stop tracking first (SELECT untrack_table(%L)), change the key, then track it again; rename the old event table to keep its history apart.', p_table::text);
    END IF;

    FOR v_old IN
        SELECT c.key::int2 AS attnum, c.value ->> 'name' AS name, (c.value ->> 'type')::oid AS typid,
               (c.value ->> 'typmod')::integer AS typmod
          FROM pg_catalog.jsonb_each(p_before -> 'columns') AS c
         ORDER BY 1
    LOOP
        SELECT a.attname, a.attisdropped, a.atttypid, a.atttypmod, a.attgenerated INTO v_now
          FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid OPERATOR(pg_catalog.=) p_table AND a.attnum OPERATOR(pg_catalog.=) v_old.attnum;

        IF v_now.attisdropped THEN
            SELECT k.label INTO v_tracker FROM history_track.tracker AS k
             WHERE k.table_name OPERATOR(pg_catalog.=) p_table AND v_old.name::name OPERATOR(pg_catalog.=) ANY (k.changed)
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'cannot drop column "%" of table %: tracker "%" watches it', v_old.name, p_table, v_tracker.label
                    USING ERRCODE = 'dependent_objects_still_exist',
                          DETAIL = 'The tracker records an update when one of its changed columns changed.',
                          HINT = pg_catalog.format('Remove the tracker first: SELECT untrack_table(%L, label => %L);', p_table::text, v_tracker.label);
            END IF;
            v_dropped := true;
            UPDATE history_track.tracked_table AS t
               SET columns = pg_catalog.array_remove(t.columns, v_old.name::name),
                   exclude = pg_catalog.array_remove(t.exclude, v_old.name::name)
             WHERE t.table_name OPERATOR(pg_catalog.=) p_table;
            -- The event table keeps the column and what it recorded.
        ELSIF v_now.attname::text OPERATOR(pg_catalog.<>) v_old.name THEN
            IF EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid OPERATOR(pg_catalog.=) v_table.event_table AND NOT a.attisdropped
                          AND a.attname OPERATOR(pg_catalog.=) v_old.name::name)
               AND (v_table.columns IS NULL OR v_old.name::name OPERATOR(pg_catalog.=) ANY (v_table.columns))
               AND NOT v_old.name::name OPERATOR(pg_catalog.=) ANY (v_table.exclude) THEN
                IF EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                            WHERE a.attrelid OPERATOR(pg_catalog.=) v_table.event_table AND NOT a.attisdropped
                              AND a.attname OPERATOR(pg_catalog.=) v_now.attname) THEN
                    RAISE EXCEPTION 'cannot rename column "%" of table % to "%": its event table % has a column "%"',
                                    v_old.name, p_table, v_now.attname, v_table.event_table, v_now.attname
                        USING ERRCODE = 'duplicate_column',
                              DETAIL = 'The event table keeps the history of a dropped column under that name.',
                              HINT = 'Choose another name.';
                END IF;
                EXECUTE pg_catalog.format('ALTER TABLE %s RENAME COLUMN %I TO %I', v_event, v_old.name, v_now.attname);
            END IF;
            UPDATE history_track.tracked_table AS t
               SET columns = pg_catalog.array_replace(t.columns, v_old.name::name, v_now.attname),
                   exclude = pg_catalog.array_replace(t.exclude, v_old.name::name, v_now.attname)
             WHERE t.table_name OPERATOR(pg_catalog.=) p_table;
            UPDATE history_track.tracker AS k
               SET changed = pg_catalog.array_replace(k.changed, v_old.name::name, v_now.attname)
             WHERE k.table_name OPERATOR(pg_catalog.=) p_table;
            v_renamed := true;
        ELSIF (v_now.atttypid, v_now.atttypmod) IS DISTINCT FROM (v_old.typid, v_old.typmod) THEN
            PERFORM history_track._follow_type(p_table, v_table, v_old.name::name, v_old.typid, v_old.typmod,
                                               v_now.atttypid, v_now.atttypmod);
        END IF;
    END LOOP;

    -- Conditions: rewritten for a renamed column, then checked against the
    -- table as it is now (a dropped column, a type the expression no longer
    -- fits), exactly as track_table() checks a new one.
    FOR v_tracker IN
        SELECT k.label, k.condition FROM history_track.tracker AS k
         WHERE k.table_name OPERATOR(pg_catalog.=) p_table AND k.condition IS NOT NULL
    LOOP
        v_body := v_tracker.condition;
        IF v_renamed THEN
            v_body := history_track._condition_renamed(p_table, p_before, v_tracker.condition);
            IF v_body IS NULL THEN
                RAISE EXCEPTION 'cannot rename a column of table % that the condition of tracker "%" uses', p_table, v_tracker.label
                    USING ERRCODE = 'feature_not_supported',
                          DETAIL = pg_catalog.format('The condition could not be rewritten with the new name: %s', v_tracker.condition),
                          HINT = pg_catalog.format('Remove the tracker (SELECT untrack_table(%L, label => %L)), rename the column, and declare the tracker again.',
                                                   p_table::text, v_tracker.label);
            END IF;
        END IF;
        BEGIN
            PERFORM history_track._check_condition(p_table, v_tracker.label, v_body);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_detail = PG_EXCEPTION_DETAIL;
            -- A column it names is gone: "column does not exist" (42703) or,
            -- for NEW.col, "missing FROM-clause entry for table new" (42P01).
            IF v_state OPERATOR(pg_catalog.=) ANY (ARRAY['42703', '42P01']) AND v_dropped THEN
                RAISE EXCEPTION 'cannot drop a column of table % that the condition of tracker "%" uses', p_table, v_tracker.label
                    USING ERRCODE = 'dependent_objects_still_exist',
                          DETAIL = pg_catalog.format('The condition is: %s', v_tracker.condition),
                          HINT = pg_catalog.format('Remove the tracker first: SELECT untrack_table(%L, label => %L);', p_table::text, v_tracker.label);
            END IF;
            RAISE EXCEPTION 'the condition of tracker "%" does not fit table % as altered', v_tracker.label, p_table
                USING ERRCODE = v_state,
                      DETAIL = pg_catalog.format('%s The condition is: %s', v_detail, v_tracker.condition),
                      HINT = pg_catalog.format('Remove the tracker first (SELECT untrack_table(%L, label => %L)), alter the table, and declare the tracker again with a condition that fits.',
                                               p_table::text, v_tracker.label);
        END;
        IF v_body OPERATOR(pg_catalog.<>) v_tracker.condition THEN
            UPDATE history_track.tracker AS k SET condition = v_body
             WHERE k.table_name OPERATOR(pg_catalog.=) p_table AND k.label OPERATOR(pg_catalog.=) v_tracker.label;
        END IF;
    END LOOP;

    -- New columns, when the event table mirrors every column.
    SELECT * INTO STRICT v_table FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table;
    PERFORM history_track._prepare_event_table(p_table, v_table.columns, v_table.exclude);
    PERFORM history_track._generate(p_table);
END
$$;

-- A tracked column's type changed: change the event table's column (and
-- pgh_obj_id / pgh_old_obj_id, for a one-column key) the same way, if every
-- recorded value comes back unchanged from the new type. Only between
-- PostgreSQL's own types: the cast runs with the extension owner's privileges.
CREATE FUNCTION history_track._follow_type(p_table regclass, p_stored history_track.tracked_table, p_column name,
                                           p_old_type oid, p_old_typmod integer, p_new_type oid, p_new_typmod integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event   text := history_track._qualified(p_stored.event_table);
    v_old     text := pg_catalog.format_type(p_old_type, p_old_typmod);
    v_new     text := pg_catalog.format_type(p_new_type, p_new_typmod);
    v_targets name[] := '{}'::name[];
    v_target  name;
    v_lost    bigint;
    v_message text;
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                WHERE a.attrelid OPERATOR(pg_catalog.=) p_stored.event_table AND NOT a.attisdropped
                  AND a.attname OPERATOR(pg_catalog.=) p_column
                  AND (a.atttypid, a.atttypmod) = (p_old_type, p_old_typmod)) THEN
        v_targets := ARRAY[p_column];
    END IF;
    IF history_track._key_columns(p_table) OPERATOR(pg_catalog.=) ARRAY[p_column] THEN
        v_targets := v_targets OPERATOR(pg_catalog.||) '{pgh_obj_id,pgh_old_obj_id}'::name[];
    END IF;
    IF pg_catalog.cardinality(v_targets) OPERATOR(pg_catalog.=) 0 THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM history_track.chain AS c WHERE c.event_table OPERATOR(pg_catalog.=) p_stored.event_table) THEN
        RAISE EXCEPTION 'cannot change the type of column "%" of tracked table %: its history is hash-chained', p_column, p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Converting recorded values would change what the chain''s links cover.',
                  HINT = 'Add a column of the new type and copy the values instead.';
    END IF;
    IF p_old_type::bigint OPERATOR(pg_catalog.>=) 16384 OR p_new_type::bigint OPERATOR(pg_catalog.>=) 16384 THEN
        RAISE EXCEPTION 'cannot change the type of column "%" of tracked table % from % to %', p_column, p_table, v_old, v_new
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'history_track converts the recorded history only between PostgreSQL''s own types (no domains, enums or extension types).',
                  HINT = pg_catalog.format('Untrack the table (SELECT untrack_table(%L)), change the type, convert %s yourself, and track it again.',
                                           p_table::text, p_stored.event_table);
    END IF;
    FOREACH v_target IN ARRAY v_targets LOOP
        BEGIN
            EXECUTE pg_catalog.format(
                'SELECT pg_catalog.count(*) FROM %s AS e WHERE e.%2$I IS NOT NULL'
                ' AND e.%2$I::%3$s::%4$s::text IS DISTINCT FROM e.%2$I::text',
                v_event, v_target, v_new, v_old) INTO v_lost;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
            v_lost := -1;
        END;
        IF v_lost OPERATOR(pg_catalog.<>) 0 THEN
            RAISE EXCEPTION 'cannot change the type of column "%" of tracked table % from % to %', p_column, p_table, v_old, v_new
                USING ERRCODE = 'datatype_mismatch',
                      DETAIL = CASE WHEN v_lost OPERATOR(pg_catalog.<) 0
                                    THEN pg_catalog.format('Recorded values of %s.%I do not convert: %s', p_stored.event_table, v_target, v_message)
                                    ELSE pg_catalog.format('%s recorded values of %s.%I would change in the conversion.', v_lost, p_stored.event_table, v_target) END,
                      HINT = 'Change it to a type that holds every recorded value (e.g. a wider one), or untrack the table, change the type, and track it again.';
        END IF;
        EXECUTE pg_catalog.format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING %2$I::%3$s', v_event, v_target, v_new);
    END LOOP;
END
$$;

CREATE EVENT TRIGGER history_track_ddl_start ON ddl_command_start
    WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION history_track._on_ddl_start();
CREATE EVENT TRIGGER history_track_ddl_end ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE')
    EXECUTE FUNCTION history_track._on_ddl_end();
-- Protection: history that cannot be rewritten, and triggers that stay.
--
-- * Event tables are append-only: a BEFORE UPDATE OR DELETE OR TRUNCATE
--   statement trigger refuses every change, also to their owner (the
--   extension's owner, normally a superuser), except inside prune_history(),
--   the one sanctioned way to remove history, which is itself logged.
--   (Nobody but the extension's owner may write an event table at all: the
--   table's owner gets SELECT only.)
-- * The triggers that record a tracked table stay: a table owner who drops or
--   disables one (DROP TRIGGER, ALTER TABLE ... DISABLE TRIGGER) is refused;
--   untrack_table() is the way to stop recording.
-- A superuser can still do anything (drop the event trigger, the extension,
-- set session_replication_role): see doc/security.md.

CREATE FUNCTION history_track._refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.current_setting('history_track.pruning', true) OPERATOR(pg_catalog.=) 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'event table % is append-only', TG_RELID::regclass
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = pg_catalog.format('%s would rewrite recorded history.', TG_OP),
              HINT = 'Remove old history with prune_history(tbl, before => ...); drop it with untrack_table(tbl, drop_events => true).';
END
$$;

-- Put the append-only guard on an event table (idempotent).
CREATE FUNCTION history_track._protect_event_table(p_event regclass) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS tg
                    WHERE tg.tgrelid OPERATOR(pg_catalog.=) p_event
                      AND tg.tgname OPERATOR(pg_catalog.=) 'history_track_append_only') THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER history_track_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON %s'
            ' FOR EACH STATEMENT EXECUTE FUNCTION history_track._refuse_rewrite()',
            history_track._qualified(p_event));
    END IF;
END
$$;

-- After DDL: every relation of a tracked table must still have the triggers
-- its trackers need, enabled. Called by _generate() (so ALTER TABLE, attach
-- and detach are checked) and by the sql_drop event trigger.
CREATE FUNCTION history_track._assert_triggers(p_table regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_missing record;
BEGIN
    SELECT r.relid AS rel, op AS operation, tg.tgenabled INTO v_missing
      FROM pg_catalog.unnest(history_track._relations(p_table)) WITH ORDINALITY AS r(relid, n)
     CROSS JOIN pg_catalog.unnest(ARRAY['insert', 'update', 'delete', 'truncate']) WITH ORDINALITY AS o(op, m)
      LEFT JOIN pg_catalog.pg_trigger AS tg
        ON tg.tgrelid OPERATOR(pg_catalog.=) r.relid AND tg.tgname OPERATOR(pg_catalog.=) ('history_track_' || op)
     WHERE EXISTS (SELECT FROM history_track.tracker AS k
                    WHERE k.table_name OPERATOR(pg_catalog.=) p_table
                      AND (CASE op WHEN 'truncate' THEN 'delete' ELSE op END) OPERATOR(pg_catalog.=) ANY (k.operations))
       AND (tg.oid IS NULL OR tg.tgenabled OPERATOR(pg_catalog.<>) ALL ('{O,A}'))
     ORDER BY r.n, o.m   -- the first one: the table before its partitions, insert first
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'the % history trigger of % cannot be %', v_missing.operation, v_missing.rel,
                        CASE WHEN v_missing.tgenabled IS NULL THEN 'dropped' ELSE 'disabled' END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Table %s is tracked: its writes must be recorded.', p_table),
                  HINT = pg_catalog.format('To stop recording, use SELECT untrack_table(%L);', p_table::text);
    END IF;
END
$$;

-- Retention: the only sanctioned way to remove history. Deletes the events
-- of tbl recorded before `before`, except, for every row that existed at that
-- moment, its last state event: history_as_of() stays exact from `before` on,
-- and knows nothing earlier. Logged in history_track.prune_log (who, what,
-- when, how many). The caller must own the table.
CREATE FUNCTION @extschema@.prune_history(tbl regclass, before timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: the event table belongs to the extension's owner; the
-- caller must own tbl (checked first).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   history_track.tracked_table;
    v_count   bigint;
    v_pruning text := pg_catalog.current_setting('history_track.pruning', true);
BEGIN
    PERFORM history_track._begin_change(tbl, 'prune_history');
    IF before IS NULL THEN
        RAISE EXCEPTION 'before must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the moment before which history goes, e.g. now() - interval ''1 year''.';
    END IF;
    IF before OPERATOR(pg_catalog.>) pg_catalog.now() THEN
        RAISE EXCEPTION 'before must not be in the future'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a past moment; events are recorded at their transaction''s start.';
    END IF;
    SELECT * INTO v_table FROM history_track.tracked_table AS t WHERE t.table_name OPERATOR(pg_catalog.=) tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no history', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Track it first: SELECT track_table(%L).', tbl::text);
    END IF;
    -- A hash chain is verified from the last link of a pruned moment on.
    EXECUTE pg_catalog.format(
        'UPDATE history_track.chain AS c SET anchor_seq = l.seq, anchor_hash = l.hash'
        '  FROM (SELECT l.seq, l.hash FROM history_track.chain_link AS l JOIN %s AS e ON e.pgh_id OPERATOR(pg_catalog.=) l.pgh_id'
        '         WHERE l.event_table OPERATOR(pg_catalog.=) $2 AND e.pgh_created_at OPERATOR(pg_catalog.<) $1'
        '         ORDER BY l.seq DESC LIMIT 1) AS l'
        ' WHERE c.event_table OPERATOR(pg_catalog.=) $2 AND l.seq OPERATOR(pg_catalog.>) c.anchor_seq',
        history_track._qualified(v_table.event_table))
    USING before, v_table.event_table;
    -- Past the append-only guard, for these deletes only (set here, not in a
    -- SET clause: see the note in 75_revert.sql).
    PERFORM pg_catalog.set_config('history_track.pruning', 'on', true);
    EXECUTE pg_catalog.format(
        E'DELETE FROM %s AS e\n'
        ' WHERE e.pgh_created_at OPERATOR(pg_catalog.<) $1\n'
        '   AND NOT e.pgh_id OPERATOR(pg_catalog.=) ANY (ARRAY(%s))',
        history_track._qualified(v_table.event_table),
        history_track._replay_sql(tbl, false, true))
    USING before, history_track._state_labels();
    GET DIAGNOSTICS v_count = ROW_COUNT;
    PERFORM pg_catalog.set_config('history_track.pruning', COALESCE(v_pruning, ''), true);
    INSERT INTO history_track.prune_log (table_name, event_table, before, events_deleted, pruned_by)
    VALUES (tbl, v_table.event_table, before, v_count, history_track._caller());
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION @extschema@.prune_history(regclass, timestamptz) IS
    'Delete a tracked table''s events recorded before a moment, keeping each then-existing row''s last state; logged in history_track.prune_log';

-- Tamper evidence: an optional hash chain per event table.
--
-- start_hash_chain(tbl) starts a chain on tbl's event table: from then on,
-- every event written gets a link in history_track.chain_link, in order,
-- whose hash is sha256(previous link's hash || the event's row); the chain's
-- last link is kept in history_track.chain. verify_history(tbl) walks the
-- chain and reports the first link that does not hold: an event changed,
-- deleted or added outside the chain, a link removed. The row is hashed as
-- JSON keyed by attribute number (so a renamed column does not break it;
-- NULLs are left out, so a column added later does not either).
-- Writers of a chained table take turns on the chain's row until they commit.

-- The bytes of an event's row that its link covers.
CREATE FUNCTION history_track._chain_bytes(p_row jsonb, p_columns text[], p_numbers text[]) RETURNS bytea
LANGUAGE sql IMMUTABLE
AS $$
    SELECT pg_catalog.convert_to(COALESCE(pg_catalog.jsonb_object_agg(c.num, p_row OPERATOR(pg_catalog.->) c.name),
                                          '{}'::jsonb)::text, 'UTF8')
      FROM ROWS FROM (pg_catalog.unnest(p_columns), pg_catalog.unnest(p_numbers)) AS c(name, num)
     WHERE pg_catalog.jsonb_typeof(p_row OPERATOR(pg_catalog.->) c.name) OPERATOR(pg_catalog.<>) 'null'
$$;

-- The event table's columns a link covers, and their attribute numbers.
CREATE FUNCTION history_track._chain_columns(p_event regclass, OUT names text[], OUT numbers text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum), pg_catalog.array_agg(a.attnum::text ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid OPERATOR(pg_catalog.=) p_event AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
$$;

-- AFTER INSERT ... FOR EACH STATEMENT on a chained event table: link the
-- statement's events, in pgh_id order, after the chain's last link.
CREATE FUNCTION history_track._chain_link() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_seq     bigint;
    v_hash    bytea;
    v_columns record := history_track._chain_columns(TG_RELID);
    v_event   record;
    v_seqs    bigint[] := '{}'::bigint[];
    v_ids     bigint[] := '{}'::bigint[];
    v_hashes  bytea[] := '{}'::bytea[];
BEGIN
    -- Writers take turns here: the row stays locked until this transaction ends.
    SELECT c.seq, c.hash INTO STRICT v_seq, v_hash FROM history_track.chain AS c
     WHERE c.event_table OPERATOR(pg_catalog.=) TG_RELID::regclass FOR UPDATE;
    FOR v_event IN SELECT pg_catalog.to_jsonb(n) AS j FROM pgh_chained AS n ORDER BY n.pgh_id LOOP
        v_seq := v_seq OPERATOR(pg_catalog.+) 1;
        v_hash := pg_catalog.sha256(v_hash OPERATOR(pg_catalog.||)
                                    history_track._chain_bytes(v_event.j, v_columns.names, v_columns.numbers));
        v_seqs := v_seqs OPERATOR(pg_catalog.||) v_seq;
        v_ids := v_ids OPERATOR(pg_catalog.||) (v_event.j OPERATOR(pg_catalog.->>) 'pgh_id')::bigint;
        v_hashes := v_hashes OPERATOR(pg_catalog.||) v_hash;
    END LOOP;
    INSERT INTO history_track.chain_link (event_table, seq, pgh_id, hash)
    SELECT TG_RELID::regclass, l.seq, l.id, l.hash FROM ROWS FROM (pg_catalog.unnest(v_seqs), pg_catalog.unnest(v_ids), pg_catalog.unnest(v_hashes)) AS l(seq, id, hash);
    UPDATE history_track.chain AS c SET seq = v_seq, hash = v_hash
     WHERE c.event_table OPERATOR(pg_catalog.=) TG_RELID::regclass;
    RETURN NULL;
END
$$;

CREATE FUNCTION @extschema@.start_hash_chain(tbl regclass) RETURNS void
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: the chain and the event table belong to the extension's
-- owner; the caller must own tbl (checked first).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   history_track.tracked_table;
    v_genesis bytea;
    v_after   bigint;
BEGIN
    PERFORM history_track._begin_change(tbl, 'start_hash_chain');
    SELECT * INTO v_table FROM history_track.tracked_table AS t WHERE t.table_name OPERATOR(pg_catalog.=) tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no history', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Track it first: SELECT track_table(%L).', tbl::text);
    END IF;
    IF EXISTS (SELECT FROM history_track.chain AS c WHERE c.event_table OPERATOR(pg_catalog.=) v_table.event_table) THEN
        RAISE NOTICE 'the history of % is already hash-chained, skipping', tbl;
        RETURN;
    END IF;
    -- Events written from now on are linked (the table is locked meanwhile).
    EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', history_track._qualified(v_table.event_table));
    v_genesis := pg_catalog.sha256(pg_catalog.convert_to(
                     pg_catalog.gen_random_uuid()::text OPERATOR(pg_catalog.||) pg_catalog.clock_timestamp()::text, 'UTF8'));
    EXECUTE pg_catalog.format('SELECT COALESCE(pg_catalog.max(e.pgh_id), 0) FROM %s AS e',
                              history_track._qualified(v_table.event_table)) INTO v_after;
    INSERT INTO history_track.chain (event_table, genesis, hash, anchor_hash, after_id, started_by)
    VALUES (v_table.event_table, v_genesis, v_genesis, v_genesis, v_after, history_track._caller());
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER history_track_chain AFTER INSERT ON %s REFERENCING NEW TABLE AS pgh_chained'
        ' FOR EACH STATEMENT EXECUTE FUNCTION history_track._chain_link()',
        history_track._qualified(v_table.event_table));
END
$$;

COMMENT ON FUNCTION @extschema@.start_hash_chain(regclass) IS
    'Start a hash chain over a tracked table''s events from now on; verify_history() checks it';

CREATE FUNCTION @extschema@.verify_history(tbl regclass)
RETURNS TABLE (verified bigint, first_broken_link bigint, pgh_id bigint, problem text, last_hash text)
LANGUAGE plpgsql STABLE
-- SECURITY DEFINER: to read the chain; the caller must be allowed to read
-- the history (SELECT on the event table).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   history_track.tracked_table := history_track._readable(tbl, 'verify_history');
    v_chain   history_track.chain;
    v_columns record;
    v_link    record;
    v_row     jsonb;
    v_prev    bytea;
    v_next    bigint;
BEGIN
    SELECT * INTO v_chain FROM history_track.chain AS c WHERE c.event_table OPERATOR(pg_catalog.=) v_table.event_table;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the history of % has no hash chain', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Start one with SELECT start_hash_chain(%L); events written from then on are linked.', tbl::text);
    END IF;
    v_columns := history_track._chain_columns(v_table.event_table);
    verified := 0;
    v_prev := v_chain.anchor_hash;
    v_next := v_chain.anchor_seq OPERATOR(pg_catalog.+) 1;
    FOR v_link IN
        SELECT l.seq, l.pgh_id, l.hash FROM history_track.chain_link AS l
         WHERE l.event_table OPERATOR(pg_catalog.=) v_table.event_table AND l.seq OPERATOR(pg_catalog.>) v_chain.anchor_seq
         ORDER BY l.seq
    LOOP
        first_broken_link := v_link.seq;
        pgh_id := v_link.pgh_id;
        IF v_link.seq OPERATOR(pg_catalog.<>) v_next THEN
            first_broken_link := v_next;
            pgh_id := NULL;
            problem := pg_catalog.format('link %s is missing', v_next);
            RETURN NEXT;
            RETURN;
        END IF;
        EXECUTE pg_catalog.format('SELECT pg_catalog.to_jsonb(e) FROM %s AS e WHERE e.pgh_id OPERATOR(pg_catalog.=) $1',
                                  history_track._qualified(v_table.event_table))
           INTO v_row USING v_link.pgh_id;
        IF v_row IS NULL THEN
            problem := pg_catalog.format('event %s was deleted', v_link.pgh_id);
            RETURN NEXT;
            RETURN;
        END IF;
        IF pg_catalog.sha256(v_prev OPERATOR(pg_catalog.||) history_track._chain_bytes(v_row, v_columns.names, v_columns.numbers))
           OPERATOR(pg_catalog.<>) v_link.hash THEN
            problem := pg_catalog.format('event %s was changed (or link %s was)', v_link.pgh_id, v_link.seq);
            RETURN NEXT;
            RETURN;
        END IF;
        verified := verified OPERATOR(pg_catalog.+) 1;
        v_prev := v_link.hash;
        v_next := v_next OPERATOR(pg_catalog.+) 1;
    END LOOP;
    first_broken_link := NULL;
    pgh_id := NULL;
    IF v_next OPERATOR(pg_catalog.-) 1 OPERATOR(pg_catalog.<>) v_chain.seq THEN
        first_broken_link := v_next;
        problem := pg_catalog.format('links %s to %s are missing', v_next, v_chain.seq);
        RETURN NEXT;
        RETURN;
    END IF;
    -- Events written since the chain began but never linked (inserted with
    -- the chain trigger disabled).
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.min(e.pgh_id) FROM %s AS e WHERE e.pgh_id OPERATOR(pg_catalog.>=) $1'
        ' AND NOT EXISTS (SELECT FROM history_track.chain_link AS l WHERE l.event_table OPERATOR(pg_catalog.=) $2'
        ' AND l.pgh_id OPERATOR(pg_catalog.=) e.pgh_id)',
        history_track._qualified(v_table.event_table))
       INTO pgh_id USING v_chain.after_id OPERATOR(pg_catalog.+) 1, v_table.event_table;
    IF pgh_id IS NOT NULL THEN
        problem := pg_catalog.format('event %s is not in the chain', pgh_id);
        RETURN NEXT;
        RETURN;
    END IF;
    last_hash := pg_catalog.encode(v_chain.hash, 'hex');
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION @extschema@.verify_history(regclass) IS
    'Walk a tracked table''s hash chain: how many links hold, the first that does not and why, and the last hash (to keep outside the database)';
-- Privileges: the API is for everyone (it checks ownership itself); the
-- internals are for the extension's owner only.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA history_track FROM PUBLIC;
GRANT SELECT ON @extschema@.history_trackers TO PUBLIC;
-- The revert functions run as their caller; these two hand them checked SQL.
GRANT EXECUTE ON FUNCTION history_track._revert_sql(regclass, text, boolean),
                          history_track._event_row_sql(regclass) TO PUBLIC;
