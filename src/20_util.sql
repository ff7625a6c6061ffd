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
