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
-- The reading functions run with their caller's privileges (SECURITY
-- INVOKER): they read an event table only as the caller may, and the catalog,
-- which everyone may read. Event tables hold trusted types only (see
-- _stored_type), so their JSON (history_events) runs no code anybody but a
-- superuser defined. history_as_of returns rows of the table's own types: a
-- domain's constraints, and the cast from text of a type stored as text, run
-- when a row is rebuilt, as they would for the caller's own cast.

-- The catalog row of a tracked table whose history p_role may read.
CREATE FUNCTION history_track._readable(p_table regclass, p_call text, p_role name) RETURNS history_track.tracked_table
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table history_track.tracked_table := history_track._tracked(p_table);
BEGIN
    IF NOT has_table_privilege(p_role, v_table.event_table, 'SELECT') THEN
        RAISE EXCEPTION 'permission denied for the history of table %', p_table
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('%s needs SELECT on %s.', p_call, v_table.event_table),
                  HINT = format('The table''s owner may grant it: GRANT SELECT ON %s TO ...;', v_table.event_table);
    END IF;
    RETURN v_table;
END
$$;

-- The replay: a query of p_table's rows as they were at $1 (built from the
-- events labeled $2). With p_one_key, only the row whose key is $3 (text, see
-- _key_match_sql). For each key, the last event that touched it wins: an
-- event stored under the key (its row then, or its deletion), or an update
-- that moved the row away from the key, unless the same statement moved
-- another row onto it. p_output:
--   'table'   the table's columns in its order, of its types (columns the
--             event table does not have are NULL);
--   'events'  each row's event, as the event table holds it (trusted types:
--             what code running with history_track's privileges may read);
--   'ids'     the pgh_id of each row's event (what prune_history() keeps).
-- p_source: the relation to read the events from, if not the event table
-- (Citus: _citus_events()).
CREATE FUNCTION history_track._replay_sql(p_table regclass, p_one_key boolean, p_output text DEFAULT 'table',
                                          p_source text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table history_track.tracked_table := history_track._tracked(p_table);
    v_event text := COALESCE(p_source, history_track._qualified(v_table.event_table));
    v_cols  text;
BEGIN
    IF p_output = 'table' THEN
        SELECT string_agg(
                   CASE WHEN ea.attname IS NULL
                        THEN format('NULL::%s', format_type(a.atttypid, a.atttypmod))
                        WHEN (ea.atttypid, ea.atttypmod) = (a.atttypid, a.atttypmod)
                        THEN format('(pgh_s.pgh_row).%I', a.attname)
                        ELSE format('(pgh_s.pgh_row).%I::%s', a.attname, format_type(a.atttypid, a.atttypmod))
                   END, ', ' ORDER BY a.attnum)
          INTO v_cols
          FROM pg_attribute AS a
          LEFT JOIN pg_attribute AS ea
            ON ea.attrelid = v_table.event_table AND ea.attname = a.attname AND NOT ea.attisdropped
         WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped;
    END IF;
    RETURN format(
        E'SELECT %4$s\n'
        '  FROM (SELECT DISTINCT ON (pgh_x.pgh_key) pgh_x.pgh_alive, pgh_x.pgh_row\n'
        '          FROM (SELECT pgh_e.pgh_obj_id AS pgh_key, pgh_e.pgh_id AS pgh_order,\n'
        '                       pgh_e.pgh_operation <> ALL (''{DELETE,TRUNCATE}'') AS pgh_alive,\n'
        '                       pgh_e AS pgh_row\n'
        '                  FROM %1$s AS pgh_e\n'
        '                 WHERE pgh_e.pgh_created_at <= $1\n'
        '                   AND pgh_e.pgh_label = ANY ($2)%2$s\n'
        '                UNION ALL\n'
        '                SELECT pgh_d.pgh_old_obj_id, pgh_d.pgh_id, false, NULL::%1$s\n'
        '                  FROM %1$s AS pgh_d\n'
        '                 WHERE pgh_d.pgh_old_obj_id IS NOT NULL\n'
        '                   AND pgh_d.pgh_created_at <= $1\n'
        '                   AND pgh_d.pgh_label = ANY ($2)%3$s\n'
        '                   AND NOT EXISTS (SELECT FROM %1$s AS pgh_a\n'
        '                                    WHERE pgh_a.pgh_obj_id = pgh_d.pgh_old_obj_id\n'
        '                                      AND pgh_a.pgh_statement_id = pgh_d.pgh_statement_id)\n'
        '               ) AS pgh_x\n'
        '         ORDER BY pgh_x.pgh_key, pgh_x.pgh_order DESC) AS pgh_s\n'
        ' WHERE pgh_s.pgh_alive',
        v_event,
        CASE WHEN p_one_key THEN E'\n                   AND ' || history_track._key_match_sql(p_table, 'pgh_e.pgh_obj_id', '$3')
             ELSE '' END,
        CASE WHEN p_one_key THEN E'\n                   AND ' || history_track._key_match_sql(p_table, 'pgh_d.pgh_old_obj_id', '$3')
             ELSE '' END,
        CASE p_output WHEN 'ids' THEN '(pgh_s.pgh_row).pgh_id'
                      WHEN 'events' THEN '(pgh_s.pgh_row).*'
                      ELSE v_cols END);
END
$$;

-- (history_as_of's body, in history_track's schema, where no one but a
-- superuser creates functions: revert_table() and revert_row() call it by
-- this name. history_as_of() is polymorphic, so a function of the same name
-- that a role able to create in the extension's schema defines for one
-- table's row type would be the better match, and run as whoever reverts.)
CREATE FUNCTION history_track._history_as_of(tbl anyelement, ts timestamptz, key text)
RETURNS SETOF anyelement
-- VOLATILE: on Citus, the events are first copied from the shards into a
-- temporary table (_citus_events()), which the replay must then see.
LANGUAGE plpgsql VOLATILE
-- SECURITY INVOKER: the event table is read with the caller's privileges.
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel regclass;
BEGIN
    SELECT NULLIF(t.typrelid, 0)::regclass INTO v_rel FROM pg_type AS t WHERE t.oid = pg_typeof(tbl);
    IF v_rel IS NULL OR NOT EXISTS (SELECT FROM pg_class AS c WHERE c.oid = v_rel AND c.relkind = ANY ('{r,p}')) THEN
        RAISE EXCEPTION 'history_as_of takes a row of a table, not %', pg_typeof(tbl)
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Pass NULL cast to the table''s row type: SELECT * FROM history_as_of(NULL::orders, ''2026-01-01'').';
    END IF;
    IF ts IS NULL THEN
        RAISE EXCEPTION 'ts must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the moment to go back to, e.g. now() - interval ''1 day''.';
    END IF;
    PERFORM history_track._readable(v_rel, 'history_as_of', current_user);
    IF EXISTS (SELECT FROM history_track.tracker AS t WHERE t.table_name = v_rel)
       AND NOT history_track._has_default_trackers(v_rel) THEN
        RAISE EXCEPTION 'table % cannot be replayed: it does not have all three default trackers', v_rel
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'history_as_of replays the events of the insert, update and delete trackers.',
                  HINT = format('Add them with SELECT track_table(%L); history is complete from then on (baseline => true records the rows '
                                'as they are).', v_rel::text);
    END IF;
    -- Citus (45_citus.sql): a distributed table's events from one shard (key) or all.
    RETURN QUERY EXECUTE history_track._replay_sql(v_rel, key IS NOT NULL, 'table', history_track._citus_events(v_rel, key, NULL))
        USING ts, history_track._state_labels(), key;
END
$$;

CREATE FUNCTION @extschema@.history_as_of(tbl anyelement, ts timestamptz, key text DEFAULT NULL)
RETURNS SETOF anyelement
LANGUAGE sql VOLATILE    -- see _history_as_of
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM history_track._history_as_of(tbl, ts, key)
$$;

COMMENT ON FUNCTION @extschema@.history_as_of(anyelement, timestamptz, text) IS
    'The rows of a tracked table as they were at a moment (or, with key, the one row with that key): SELECT * FROM '
    'history_as_of(NULL::orders, ts)';

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

-- history_events(): the FROM item of one row's events (the key in $1), with
-- those of the keys its rows had before they moved to it (each up to the
-- statement that moved it), and the updates that moved a row away from it.
CREATE FUNCTION history_track._key_events_sql(p_table regclass, p_event text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN format(
        E'(SELECT DISTINCT ON (pgh_u.pgh_id) pgh_u.* FROM (\n'
        '    WITH RECURSIVE pgh_chain (pgh_key, pgh_bound) AS (\n'
        '        SELECT pgh_k.pgh_obj_id, NULL::bigint\n'
        '          FROM (SELECT pgh_e.pgh_obj_id FROM %1$s AS pgh_e WHERE %2$s LIMIT 1) AS pgh_k\n'
        '        UNION\n'
        '        SELECT pgh_e.pgh_old_obj_id, pgh_e.pgh_statement_id\n'
        '          FROM pgh_chain AS pgh_c\n'
        '          JOIN %1$s AS pgh_e ON pgh_e.pgh_obj_id = pgh_c.pgh_key\n'
        '               AND pgh_e.pgh_id < COALESCE(pgh_c.pgh_bound, 9223372036854775807)\n'
        '         WHERE pgh_e.pgh_old_obj_id IS NOT NULL\n'
        '    )\n'
        '    SELECT pgh_e.* FROM pgh_chain AS pgh_c\n'
        '      JOIN %1$s AS pgh_e ON pgh_e.pgh_obj_id = pgh_c.pgh_key\n'
        '           AND pgh_e.pgh_id < COALESCE(pgh_c.pgh_bound, 9223372036854775807)\n'
        '    UNION ALL\n'
        '    SELECT pgh_e.* FROM %1$s AS pgh_e WHERE %3$s\n'
        '  ) AS pgh_u ORDER BY pgh_u.pgh_id)',
        p_event,
        history_track._key_match_sql(p_table, 'pgh_e.pgh_obj_id', '$1'),
        history_track._key_match_sql(p_table, 'pgh_e.pgh_old_obj_id', '$1'));
END
$$;

-- history_events(): the query of one event table's events (FROM p_source,
-- filtered by p_where), each with its row (data) and its diff against the
-- state before it: the row's last state event before it (before its
-- statement, when the event moved the row to a new key); none for an insert,
-- or after a delete. Parameters: $5 the table, $6 the state labels, $7 the
-- labels whose updates store the old row (no diff of their own), $8 the
-- pgh_ columns, $9 the limit.
CREATE FUNCTION history_track._events_sql(p_source text, p_event text, p_where text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN format(
        E'SELECT * FROM (\n'
        'SELECT $5, pgh_e.pgh_id, pgh_e.pgh_created_at, pgh_e.pgh_label, pgh_e.pgh_operation,\n'
        '       pg_catalog.to_jsonb(pgh_e.pgh_obj_id), pgh_e.pgh_context_id, pgh_e.pgh_context, pgh_d.data,\n'
        '       CASE WHEN pgh_e.pgh_operation = ''UPDATE''\n'
        '                 AND pgh_e.pgh_label = ANY ($7) THEN NULL\n'
        '            ELSE history_track._diff(pgh_e.pgh_operation, pgh_d.data, pgh_p.data) END\n'
        '  FROM %1$s AS pgh_e\n'
        ' CROSS JOIN LATERAL (SELECT pg_catalog.to_jsonb(pgh_e) - $8 AS data) AS pgh_d\n'
        '  LEFT JOIN LATERAL (\n'
        '       SELECT CASE WHEN pgh_p.pgh_operation <> ALL (''{DELETE,TRUNCATE}'')\n'
        '                   THEN pg_catalog.to_jsonb(pgh_p) - $8 END AS data\n'
        '         FROM %2$s AS pgh_p\n'
        '        WHERE pgh_p.pgh_obj_id = COALESCE(pgh_e.pgh_old_obj_id, pgh_e.pgh_obj_id)\n'
        '          AND pgh_p.pgh_id < COALESCE(pgh_e.pgh_statement_id, pgh_e.pgh_id)\n'
        '          AND pgh_p.pgh_label = ANY ($6)\n'
        '          AND pgh_e.pgh_operation <> ''INSERT''\n'
        '        ORDER BY pgh_p.pgh_id DESC LIMIT 1) AS pgh_p ON true\n'
        '%3$s\n'
        ' ORDER BY pgh_e.pgh_id DESC LIMIT $9) AS pgh_x\n'
        ' ORDER BY 2',
        p_source, p_event,
        CASE WHEN cardinality(p_where) > 0
             THEN ' WHERE ' || array_to_string(p_where, E'\n   AND ') ELSE '' END);
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
-- VOLATILE: see history_as_of.
LANGUAGE plpgsql VOLATILE
-- SECURITY INVOKER: an event table is read only as the caller may read it.
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key     text        := history_events.key;
    v_context uuid        := history_events.context_id;
    v_table   history_track.tracked_table;
    v_event   text;
    v_where   text[];
    v_old     text[];
BEGIN
    IF v_key IS NOT NULL AND tbl IS NULL THEN
        RAISE EXCEPTION 'key needs tbl'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the table too: history_events(''orders'', key => ''42'').';
    END IF;
    IF tbl IS NOT NULL THEN
        PERFORM history_track._readable(tbl, 'history_events', current_user);
    END IF;
    IF last < 0 THEN
        RAISE EXCEPTION 'last must not be negative'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass how many of the latest events to return, or leave last out for all.';
    END IF;

    FOR v_table IN
        SELECT t.* FROM history_track.tracked_table AS t
         WHERE (tbl IS NULL OR t.table_name = tbl)
           AND has_table_privilege(t.event_table, 'SELECT')
         ORDER BY t.event_table::text
    LOOP
        -- Citus (45_citus.sql): a distributed table's events of one shard (key), of a context's rows, or all.
        v_event := COALESCE(history_track._citus_events(v_table.table_name, v_key, v_context),
                            history_track._qualified(v_table.event_table));
        v_where := '{}';
        IF v_context IS NOT NULL AND history_track._citus_distributed(v_table.table_name) THEN
            -- Citus (45_citus.sql): each node's events carry its own time; an index on the id finds them.
            v_where := v_where || 'pgh_e.pgh_context_id = $2'::text;
        ELSIF v_context IS NOT NULL THEN
            -- A context id carries its transaction's start time, which is
            -- every one of its events' pgh_created_at: the BRIN index finds them.
            v_where := v_where || ARRAY[
                'pgh_e.pgh_created_at >= (history_track._context_time($2) - interval ''1 millisecond'')',
                'pgh_e.pgh_created_at < (history_track._context_time($2) + interval ''2 milliseconds'')',
                'pgh_e.pgh_context_id = $2'];
        END IF;
        IF since IS NOT NULL THEN
            v_where := v_where || 'pgh_e.pgh_created_at >= $3'::text;
        END IF;
        IF until IS NOT NULL THEN
            v_where := v_where || 'pgh_e.pgh_created_at < $4'::text;
        END IF;
        -- Trackers storing the old row of an update have no diff of their own.
        SELECT array_agg(t.label) INTO v_old FROM history_track.tracker AS t
         WHERE t.table_name = v_table.table_name AND t.snapshot = 'old';

        RETURN QUERY EXECUTE history_track._events_sql(
                CASE WHEN v_key IS NULL THEN v_event ELSE history_track._key_events_sql(tbl, v_event) END,
                v_event, v_where)
            USING v_key, v_context, since, until, v_table.table_name, history_track._state_labels(),
                  COALESCE(v_old, '{}'), history_track._pgh_columns(), last;
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.history_events(regclass, text, uuid, timestamptz, timestamptz, integer) IS
    'Events across the event tables the caller may read, with their row (data) and what changed (diff); filter by table, key, context id, '
    'time and the last N';

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
-- VOLATILE: see history_as_of.
LANGUAGE sql VOLATILE
-- SECURITY INVOKER: history_events reads what the caller may read.
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.table_name, t.event_table, e.pgh_id, e.pgh_created_at, e.pgh_label, e.pgh_operation,
           e.pgh_obj_id, e.pgh_context, e.data
      -- (every argument with its type: an exact match, which no function
      -- another role defines in the extension's schema can be a better one for)
      FROM @extschema@.history_events(NULL::pg_catalog.regclass, NULL::pg_catalog.text, history_context_events.context_id,
                                      NULL::pg_catalog.timestamptz, NULL::pg_catalog.timestamptz, NULL::pg_catalog.int4) AS e
      JOIN history_track.tracked_table AS t ON t.table_name = e.table_name
     ORDER BY t.event_table::text, e.pgh_id
$$;

COMMENT ON FUNCTION @extschema@.history_context_events(uuid) IS
    'Every event of one context, across the event tables the caller may read';
