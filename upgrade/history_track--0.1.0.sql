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
--   60_manual.sql    record_history_event: manual events
--   70_read.sql      reading history: history_context_events
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

SELECT pg_catalog.pg_extension_config_dump('history_track.tracked_table', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.tracked_table_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.tracker', '');

REVOKE ALL ON history_track.tracked_table, history_track.tracker,
              history_track.tracked_table_id_seq FROM PUBLIC;
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
    ELSIF v_class.relkind = 'p' THEN
        RAISE EXCEPTION 'partitioned table % cannot be tracked yet', p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Tracking partitioned tables is not supported in this version.',
                  HINT = 'Track each partition''s rows through an ordinary table, or wait for partition support.';
    ELSIF v_class.relkind <> 'r' THEN
        RAISE EXCEPTION '% is not a table', p_table
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Pass an ordinary table to track_table().';
    END IF;

    IF v_class.relispartition THEN
        RAISE EXCEPTION '% is a partition', p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Writes routed through the partitioned table would not be recorded by a partition''s own triggers.',
                  HINT = 'Partition support is not available in this version.';
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
-- (_context_id and _context run once per written statement, so they carry no
-- SET clause of their own: only the extension's owner may call them, always
-- from functions that pin search_path, and every name in them is qualified.)
CREATE FUNCTION history_track._context_id() RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_hash text := pg_catalog.md5(pg_catalog.pg_postmaster_start_time()::text OPERATOR(pg_catalog.||) '/'
                                  OPERATOR(pg_catalog.||) pg_catalog.current_database()::text OPERATOR(pg_catalog.||) '/'
                                  OPERATOR(pg_catalog.||) pg_catalog.pg_current_xact_id()::text);
    v_ms   bigint := pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.now()) OPERATOR(pg_catalog.*) 1000);
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
-- join to, once per statement. A setting that is not a JSON object is
-- refused: the write that would have carried it fails with a clear error
-- instead of being recorded without it (invalid JSON: 22P02 from the cast).
CREATE FUNCTION history_track._context(OUT context_id uuid, OUT context jsonb)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    v_text text := pg_catalog.current_setting('history_track.context', true);
BEGIN
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

-- The INSERT ... SELECT that one tracker runs for one operation. p_context is
-- the SQL of the context's id and metadata: the trigger function's variable
-- (read once per statement), or NULLs when the statement is checked.
-- 'truncate' is the delete trackers' statement reading the whole table before
-- it is emptied (p_check: reading the empty stand-in instead).
CREATE FUNCTION history_track._tracker_sql(p_table regclass, p_label text, p_operation text,
                                           p_context text DEFAULT 'pgh_context.context_id, pgh_context.context',
                                           p_check boolean DEFAULT false)
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
        v_from := CASE WHEN p_operation OPERATOR(pg_catalog.=) 'truncate' AND NOT p_check
                       THEN pg_catalog.format('ONLY %s AS old', history_track._qualified(p_table))
                       ELSE 'pgh_old_rows AS old' END;
        IF v_tracker.condition IS NOT NULL THEN
            v_from := v_from || pg_catalog.format(E'\n      CROSS JOIN (SELECT (NULL::%s).*) AS new',
                                                  history_track._qualified(p_table));
        END IF;
    ELSE
        v_from := E'(SELECT pg_catalog.row_number() OVER () AS pgh_rn, * FROM pgh_old_rows) AS old'
               || E'\n      JOIN (SELECT pg_catalog.row_number() OVER () AS pgh_rn, * FROM pgh_new_rows) AS new'
               || E'\n        ON old.pgh_rn OPERATOR(pg_catalog.=) new.pgh_rn';
        -- An update is recorded only when a watched column really changed:
        -- compared by binary image, so no type's equality operator runs here,
        -- every type compares (json, point, ...), and 1.0 -> 1.00 is a change.
        v_changed := COALESCE(v_tracker.changed, v_cols);
        v_where := v_where || pg_catalog.format('pg_catalog.record_image_ne(ROW(%s), ROW(%s))',
            (SELECT pg_catalog.string_agg(pg_catalog.format('old.%I', c), ', ') FROM pg_catalog.unnest(v_changed) AS c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('new.%I', c), ', ') FROM pg_catalog.unnest(v_changed) AS c));
    END IF;

    IF v_tracker.condition IS NOT NULL THEN
        -- Checked by _check_condition() to be exactly one boolean expression.
        v_where := v_where || (E'(\n' || v_tracker.condition || E'\n)');
    END IF;

    RETURN pg_catalog.format(
        E'INSERT INTO %s\n'
        '        (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context%s)\n'
        '    SELECT pg_catalog.now(), %L, %L, %s, %s%s\n'
        '      FROM %s%s',
        history_track._qualified(v_table.event_table),
        (SELECT pg_catalog.string_agg(pg_catalog.format(', %I', c), '') FROM pg_catalog.unnest(v_cols) AS c),
        v_tracker.label,
        pg_catalog.upper(p_operation),
        history_track._obj_id_sql(p_table, v_snap),
        p_context,
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
BEGIN
    SELECT * INTO STRICT v_table FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table;

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

        SELECT tg.tgfoid::regprocedure INTO v_existing
          FROM pg_catalog.pg_trigger AS tg
         WHERE tg.tgrelid OPERATOR(pg_catalog.=) p_table AND tg.tgname OPERATOR(pg_catalog.=) v_trigger;
        IF v_existing IS NOT NULL AND v_existing::text OPERATOR(pg_catalog.<>) (v_function || '()') THEN
            RAISE EXCEPTION 'table % already has a trigger named "%"', p_table, v_trigger
                USING ERRCODE = 'duplicate_object',
                      DETAIL = pg_catalog.format('It calls %s, not history_track''s generated function.', v_existing),
                      HINT = 'Rename that trigger (ALTER TRIGGER ... RENAME TO ...), then track the table again.';
        END IF;

        -- The default tracker first, then labeled ones in label order.
        SELECT pg_catalog.array_agg(t.label ORDER BY t.label OPERATOR(pg_catalog.<>) v_tracked, t.label)
          INTO v_labels
          FROM history_track.tracker AS t
         WHERE t.table_name OPERATOR(pg_catalog.=) p_table
           AND v_tracked OPERATOR(pg_catalog.=) ANY (t.operations);

        IF v_labels IS NULL THEN
            EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s', v_trigger, history_track._qualified(p_table));
            EXECUTE pg_catalog.format('DROP FUNCTION IF EXISTS %s()', v_function);
            CONTINUE;
        END IF;

        v_body := '';
        FOREACH v_label IN ARRAY v_labels LOOP
            v_stmt := history_track._tracker_sql(p_table, v_label, v_operation);
            v_check := history_track._tracker_sql(p_table, v_label, v_operation, 'NULL::uuid, NULL::jsonb', true);
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
        EXECUTE pg_catalog.format(
            E'CREATE OR REPLACE FUNCTION %s() RETURNS trigger\n'
            'LANGUAGE plpgsql SECURITY DEFINER\n'
            'SET search_path = pg_catalog, pg_temp\n'
            'SET jit = off\n'
            '%s'
            'AS %L',
            v_function,
            CASE WHEN v_operation OPERATOR(pg_catalog.=) 'update' THEN E'SET enable_nestloop = off\n' ELSE '' END,
            E'#variable_conflict use_column\n'
            || pg_catalog.format(E'-- Generated by history_track for %s (%s); do not edit: the catalog is the source.\n',
                                 history_track._qualified(p_table), v_operation)
            || E'DECLARE\n    pgh_context record := history_track._context();  -- once per statement\n'
            || E'BEGIN\n' || v_body || E'    RETURN NULL;\nEND\n');
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', v_function);
        EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s() IS %L', v_function,
            pg_catalog.format('history_track: records %s events of %s; generated, do not edit',
                              v_operation, history_track._qualified(p_table)));

        IF v_existing IS NULL THEN
            EXECUTE pg_catalog.format(
                'CREATE TRIGGER %I %s %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                v_trigger,
                CASE v_operation WHEN 'truncate' THEN 'BEFORE' ELSE 'AFTER' END,
                pg_catalog.upper(v_operation), history_track._qualified(p_table),
                CASE v_operation WHEN 'insert' THEN 'REFERENCING NEW TABLE AS pgh_new_rows'
                                 WHEN 'delete' THEN 'REFERENCING OLD TABLE AS pgh_old_rows'
                                 WHEN 'update' THEN 'REFERENCING OLD TABLE AS pgh_old_rows NEW TABLE AS pgh_new_rows'
                                 ELSE '' END,
                v_function);
        END IF;
    END LOOP;
    DROP TABLE pg_temp.pgh_old_rows, pg_temp.pgh_new_rows;
END
$$;

-- Remove every generated trigger and function of a table.
CREATE FUNCTION history_track._drop_generated(p_table regclass, p_table_id integer) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning  -- no "does not exist, skipping" notices
AS $$
DECLARE
    v_operation text;
BEGIN
    FOREACH v_operation IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid OPERATOR(pg_catalog.=) p_table) THEN
            EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS %I ON %s',
                                      'history_track_' || v_operation, history_track._qualified(p_table));
        END IF;
        EXECUTE pg_catalog.format('DROP FUNCTION IF EXISTS history_track.%I()',
                                  pg_catalog.format('_t%s_%s', p_table_id, v_operation));
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
            '    pgh_context jsonb%s\n)',
            v_schema, v_name, v_objtype,
            (SELECT pg_catalog.string_agg(pg_catalog.format(E',\n    %I %s%s', m.attname, m.type_sql, m.collation_sql), '')
               FROM history_track._mirrored_columns(p_table, p_columns, p_exclude) AS m));
        v_event := pg_catalog.format('%I.%I', v_schema, v_name)::regclass;
        -- Serves a row's history: all events of one object, in order.
        EXECUTE pg_catalog.format('CREATE INDEX ON %s (pgh_obj_id, pgh_id)', history_track._qualified(v_event));
        -- Serves history_context_events() (a context id carries its time) and
        -- time ranges. BRIN: events are appended in time order, and it costs
        -- the writes next to nothing.
        EXECUTE pg_catalog.format('CREATE INDEX ON %s USING brin (pgh_created_at)',
                                  history_track._qualified(v_event));
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
    exclude    text[] DEFAULT NULL
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
        SELECT a.attname INTO v_bad FROM pg_catalog.pg_attribute AS a
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

    PERFORM history_track._generate(tbl);
    RETURN v_event;
END
$$;

COMMENT ON FUNCTION @extschema@.track_table(regclass, text, text[], text, text[], text, text[], text[]) IS
    'Record the history of a table: create its event table and the default trackers, or (with label) one named tracker';

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
        PERFORM history_track._drop_generated(tbl, v_stored.table_id);
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
-- Manual events: history for things no DML shows ("exported", "emailed",
-- "approved"). The event stores the row as it is now, with pgh_operation
-- 'MANUAL'; reading functions that replay state skip these events.

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
    v_match  text;
    v_cols   name[];
    v_obj    text := history_track._obj_id_sql(tbl, 't');
    v_objtyp text := history_track._obj_id_type(tbl);
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
       OR v_label OPERATOR(pg_catalog.=) ANY (ARRAY['insert', 'update', 'delete']) THEN
        RAISE EXCEPTION 'invalid label for a manual event: %', COALESCE(pg_catalog.quote_literal(v_label), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name what happened, e.g. ''exported''; insert, update and delete are the default trackers'' labels.';
    END IF;
    IF context IS NOT NULL AND pg_catalog.jsonb_typeof(context) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'context must be a JSON object, not %', pg_catalog.jsonb_typeof(context)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an object, e.g. ''{"reason": "monthly export"}'', or leave context out.';
    END IF;

    -- Find the row by its key, written as pgh_obj_id shows it.
    IF v_objtyp OPERATOR(pg_catalog.=) 'jsonb' THEN
        v_match := pg_catalog.format('%s OPERATOR(pg_catalog.=) $1::jsonb', v_obj);
    ELSIF (SELECT history_track._is_builtin_type(a.atttypid) FROM pg_catalog.pg_attribute AS a
            WHERE a.attrelid OPERATOR(pg_catalog.=) tbl
              AND a.attname OPERATOR(pg_catalog.=) (history_track._key_columns(tbl))[1]) THEN
        v_match := pg_catalog.format('%s OPERATOR(pg_catalog.=) $1::%s', v_obj, v_objtyp);
    ELSE
        v_match := pg_catalog.format('pg_catalog.format(''%%s'', %s) OPERATOR(pg_catalog.=) $1', v_obj);
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
        v_match)
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
-- Reading history.

-- Every event of one context (one transaction's context id), across all event
-- tables the caller may read: grouped by event table, in write order within
-- each. A context id carries its transaction's start time, which is every
-- one of its events' pgh_created_at: each event table is searched through its
-- BRIN index on pgh_created_at around that millisecond.
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
LANGUAGE plpgsql STABLE
-- SECURITY DEFINER: to read the catalog; each event table is only searched
-- when the caller may SELECT from it.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id     uuid := history_context_events.context_id;
    v_caller name := history_track._caller();
    v_table  record;
BEGIN
    FOR v_table IN
        SELECT t.table_name AS tbl, t.event_table AS ev FROM history_track.tracked_table AS t
         WHERE pg_catalog.has_table_privilege(v_caller, t.event_table, 'SELECT')
         ORDER BY t.event_table::text
    LOOP
        RETURN QUERY EXECUTE pg_catalog.format(
            E'SELECT $2, $3, e.pgh_id, e.pgh_created_at, e.pgh_label, e.pgh_operation,\n'
            '       pg_catalog.to_jsonb(e.pgh_obj_id), e.pgh_context,\n'
            '       pg_catalog.to_jsonb(e) OPERATOR(pg_catalog.-) ''{pgh_id,pgh_created_at,pgh_label,pgh_operation,pgh_obj_id,pgh_context_id,pgh_context}''::text[]\n'
            '  FROM %s AS e\n'
            ' WHERE e.pgh_created_at OPERATOR(pg_catalog.>=) ($4 OPERATOR(pg_catalog.-) interval ''1 millisecond'')\n'
            '   AND e.pgh_created_at OPERATOR(pg_catalog.<) ($4 OPERATOR(pg_catalog.+) interval ''2 milliseconds'')\n'
            '   AND e.pgh_context_id OPERATOR(pg_catalog.=) $1\n'
            ' ORDER BY e.pgh_id',
            history_track._qualified(v_table.ev))
        USING v_id, v_table.tbl, v_table.ev, history_track._context_time(v_id);
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.history_context_events(uuid) IS
    'Every event of one context, across the event tables the caller may read';
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
    SELECT pg_catalog.array_agg(d.objid) INTO v_dropped
      FROM pg_catalog.pg_event_trigger_dropped_objects() AS d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass AND d.objsubid OPERATOR(pg_catalog.=) 0;
    IF v_dropped IS NULL THEN
        RETURN;
    END IF;

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
        PERFORM history_track._drop_generated(v_row.tbl::regclass, v_row.table_id);
    END LOOP;
END
$$;

CREATE EVENT TRIGGER history_track_sql_drop ON sql_drop
    EXECUTE FUNCTION history_track._on_sql_drop();
-- Privileges: the API is for everyone (it checks ownership itself); the
-- internals are for the extension's owner only.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA history_track FROM PUBLIC;
GRANT SELECT ON @extschema@.history_trackers TO PUBLIC;
