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
