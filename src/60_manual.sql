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

-- A manual event is recorded in two steps, so that row-level security holds:
-- record_history_event() reads the row as the caller, with the caller's
-- privileges and policies (SELECT ... FOR UPDATE: a row the caller may
-- update, locked until the transaction ends), so a row the caller cannot see
-- is "no row with that key", exactly like a key that does not exist; then
-- _record_manual() writes the event from the row it reads itself at that
-- very place, after checking that this transaction holds the row's lock (the
-- caller read it: a row it cannot see it cannot have locked) and that it is
-- the same row, byte for byte, as the caller's -- so no role can pass values
-- off as a row's, or learn whether a row it cannot see exists.

-- Whether a row whose xmax is p_xmax is locked by this very transaction (or
-- one of its subtransactions): xmax is the locking transaction's id, or a
-- multixact with it among the members, and every transaction id a backend
-- holds is a lock of its own in pg_locks. What proves that the caller read
-- the row itself, FOR UPDATE, through its privileges and policies.
CREATE FUNCTION history_track._locked_by_me(p_xmax xid) RETURNS boolean
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_locks AS l
                WHERE l.locktype = 'transactionid' AND l.pid = pg_backend_pid() AND l.granted
                  AND l.transactionid = p_xmax) THEN
        RETURN true;
    END IF;
    BEGIN
        RETURN EXISTS (SELECT FROM pg_get_multixact_members(p_xmax) AS mm
                         JOIN pg_locks AS l ON l.locktype = 'transactionid' AND l.pid = pg_backend_pid()
                                           AND l.granted AND l.transactionid = mm.xid);
    EXCEPTION WHEN OTHERS THEN
        RETURN false;   -- not a multixact
    END;
END
$$;

-- A manual event's label and context, or an error.
CREATE FUNCTION history_track._assert_manual_event(p_label text, p_context jsonb) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_label IS NULL OR btrim(p_label) = '' OR p_label = ANY (history_track._state_labels()) THEN
        RAISE EXCEPTION 'invalid label for a manual event: %', COALESCE(quote_literal(p_label), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name what happened, e.g. ''exported''; insert, update, delete, baseline and revert are reserved.';
    END IF;
    IF p_context IS NOT NULL AND jsonb_typeof(p_context) <> 'object' THEN
        RAISE EXCEPTION 'context must be a JSON object, not %', jsonb_typeof(p_context)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an object, e.g. ''{"reason": "monthly export"}'', or leave context out.';
    END IF;
    IF p_context IS NOT NULL THEN
        PERFORM history_track._assert_context_size(octet_length(p_context::text));
    END IF;
END
$$;

CREATE FUNCTION history_track._record_manual(p_table regclass, p_label text, p_context jsonb,
                                             p_row anyelement, p_relation oid, p_ctid tid)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: the event table belongs to the extension's owner. The
-- caller must own tbl or be allowed to UPDATE it, and must hand the row
-- exactly as it is (checked). It reads the table: see _untrusted_code().
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET constraint_exclusion = off
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 1
SET bytea_output = 'hex'
SET lc_monetary = 'C'
SET TimeZone = 'UTC'
SET timezone_abbreviations = 'Default'
SET quote_all_identifiers = off
SET array_nulls = on
AS $$
DECLARE
    v_table  history_track.tracked_table := history_track._tracked(p_table);
    v_caller name := history_track._caller();
    v_cols   record;
    v_id     bigint;
BEGIN
    IF NOT (pg_has_role(v_caller, (SELECT c.relowner FROM pg_class AS c WHERE c.oid = p_table), 'USAGE')
            OR has_table_privilege(v_caller, p_table, 'UPDATE')) THEN
        RAISE EXCEPTION 'permission denied to record events of table %', p_table
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Role "%s" neither owns the table nor may UPDATE it.', v_caller),
                  HINT = 'Manual events can be recorded by the roles that may change the table.';
    END IF;
    PERFORM history_track._assert_manual_event(p_label, p_context);
    IF pg_typeof(p_row) <> (SELECT c.reltype FROM pg_class AS c WHERE c.oid = p_table)
       OR NOT p_relation = ANY (history_track._relations(p_table)::oid[]) THEN
        RAISE EXCEPTION 'no row of table % was handed over', p_table
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Call record_history_event().';
    END IF;

    PERFORM history_track._assert_trusted_code(p_table);    -- it reads the table
    SELECT * INTO v_cols FROM history_track._recorded_lists(p_table, 'pgh_t');
    -- (Every column of the table, in its order, is compared with the caller's row.)

    EXECUTE format(
        E'INSERT INTO %s (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context%s)\n'
        ' SELECT pg_catalog.now(), $1, ''MANUAL'', %s,\n'
        '        CASE WHEN pgh_c.context IS NOT NULL OR $2 IS NOT NULL THEN history_track._context_id() END,\n'
        '        CASE WHEN pgh_c.context IS NOT NULL OR $2 IS NOT NULL\n'
        '             THEN COALESCE(pgh_c.context, ''{}'') || COALESCE($2, ''{}'') END%s\n'
        '   FROM %s AS pgh_t CROSS JOIN history_track._context() AS pgh_c\n'
        '  WHERE pgh_t.tableoid = $4 AND pgh_t.ctid = $5\n'
        '    AND history_track._locked_by_me(pgh_t.xmax)\n'
        '    AND pg_catalog.record_image_eq(ROW(%s), ROW(%s))\n'
        ' RETURNING pgh_id',
        history_track._qualified(v_table.event_table), COALESCE(v_cols.targets, ''),
        history_track._obj_id_sql(p_table, 'pgh_t'), COALESCE(v_cols.values, ''),
        history_track._qualified(p_table),
        (SELECT string_agg(format('pgh_t.%I', a.attname), ', ' ORDER BY a.attnum)
           FROM pg_attribute AS a WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped),
        (SELECT string_agg(format('($3).%I', a.attname), ', ' ORDER BY a.attnum)
           FROM pg_attribute AS a WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped))
    INTO v_id USING p_label, p_context, p_row, p_relation, p_ctid;
    IF v_id IS NULL THEN
        RAISE EXCEPTION 'no row of table % was handed over', p_table
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Call record_history_event().';
    END IF;
    RETURN v_id;
END
$$;

CREATE FUNCTION @extschema@.record_history_event(
    tbl     regclass,
    key     text,
    label   text,
    context jsonb DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql VOLATILE
-- SECURITY INVOKER: the row is read with the caller's privileges and
-- row-level security (see above); _record_manual() writes the event.
SET search_path = pg_catalog, pg_temp
SET constraint_exclusion = off    -- the table owner's CHECK code is not planned: see _untrusted_code()
AS $$
DECLARE
    v_label    text := record_history_event.label;
    v_relation oid;
    v_ctid     tid;
    v_id       bigint;
    v_acting   bigint;
    v_saved    text[];
BEGIN
    PERFORM history_track._citus_refuse(tbl, 'record_history_event()');   -- Citus (45_citus.sql)
    IF tbl IS NULL OR key IS NULL THEN
        RAISE EXCEPTION 'tbl and key must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the table and the primary key of the row, e.g. record_history_event(''orders'', 42, ''exported'').';
    END IF;
    IF NOT EXISTS (SELECT FROM history_track.tracked_table AS t WHERE t.table_name = tbl) THEN
        RAISE EXCEPTION 'table % has no event table', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Track it first: SELECT track_table(%L).', tbl::text);
    END IF;
    PERFORM history_track._assert_manual_event(v_label, context);
    IF NOT (pg_has_role((SELECT c.relowner FROM pg_class AS c WHERE c.oid = tbl), 'USAGE')
            OR has_table_privilege(tbl, 'UPDATE')) THEN
        RAISE EXCEPTION 'permission denied to record events of table %', tbl
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Role "%s" neither owns the table nor may UPDATE it.', current_user),
                  HINT = 'Manual events can be recorded by the roles that may change the table.';
    END IF;

    -- The row, as the caller sees it, locked; then handed over (by EXECUTE:
    -- its type is the table's, which differs from call to call).
    v_saved := history_track._pin_key_settings(tbl);     -- (found by its key as history stores it)
    EXECUTE format('SELECT pgh_t.tableoid, pgh_t.ctid FROM %s AS pgh_t WHERE %s FOR UPDATE OF pgh_t',
                   history_track._qualified(tbl),
                   history_track._key_match_sql(tbl, history_track._obj_id_sql(tbl, 'pgh_t'), '$1'))
       INTO v_relation, v_ctid USING key;
    PERFORM history_track._restore_settings(v_saved);
    IF v_ctid IS NULL THEN
        RAISE EXCEPTION 'table % has no row with key %', tbl, key
            USING ERRCODE = 'no_data_found',
                  HINT = 'Pass the key as pgh_obj_id shows it: the value for a one-column key, a JSON array such as [1, "x"] for a '
                         'composite key.';
    END IF;
    v_acting := history_track._enter();
    EXECUTE format('SELECT history_track._record_manual($1, $2, $3, pgh_t, pgh_t.tableoid, pgh_t.ctid)'
                   ' FROM %s AS pgh_t WHERE pgh_t.tableoid = $4 AND pgh_t.ctid = $5', history_track._qualified(tbl))
       INTO v_id USING tbl, v_label, context, v_relation, v_ctid;
    PERFORM history_track._leave(v_acting);
    RETURN v_id;
END
$$;

-- A key given as a value (the anyelement forms of record_history_event and
-- revert_row) as text: with the settings pinned where history stores the
-- key's text form (_pin_key_settings), with the caller's, which the text
-- form is read back with, otherwise.
CREATE FUNCTION history_track._key_text(p_table regclass, p_key anyelement) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_saved text[] := history_track._pin_key_settings(p_table);
    v_text  text := format('%s', p_key);
BEGIN
    PERFORM history_track._restore_settings(v_saved);
    RETURN v_text;
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
    SELECT @extschema@.record_history_event(tbl, history_track._key_text(tbl, key), label, context)
$$;

COMMENT ON FUNCTION @extschema@.record_history_event(regclass, text, text, jsonb) IS
    'Record a manual event (pgh_operation MANUAL) for one row of a tracked table, storing the row as it is now; the row must be one the '
    'caller may see and update';
COMMENT ON FUNCTION @extschema@.record_history_event(regclass, anyelement, text, jsonb) IS
    'Record a manual event for one row, its key given as a value of any type';

-- Write baseline events for p_table: the rows of p_from (a FROM item aliased
-- pgh_t, shaped like p_table) as events with label 'baseline' and p_operation.
CREATE FUNCTION history_track._record_rows(p_table regclass, p_operation text, p_from text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET constraint_exclusion = off    -- it reads the table: see _untrusted_code()
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 1
SET bytea_output = 'hex'
SET lc_monetary = 'C'
SET TimeZone = 'UTC'
SET timezone_abbreviations = 'Default'
SET quote_all_identifiers = off
SET array_nulls = on
AS $$
DECLARE
    v_table history_track.tracked_table := history_track._tracked(p_table);
    v_cols  record;
    v_count bigint;
BEGIN
    PERFORM history_track._assert_trusted_code(p_table);
    SELECT * INTO v_cols FROM history_track._recorded_lists(p_table, 'pgh_t');
    EXECUTE format(
        E'INSERT INTO %s (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context%s)\n'
        ' SELECT pg_catalog.now(), ''baseline'', %L, %s, pgh_c.context_id, pgh_c.context%s\n'
        '   FROM history_track._context() AS pgh_c, %s',
        history_track._qualified(v_table.event_table), COALESCE(v_cols.targets, ''),
        p_operation, history_track._obj_id_sql(p_table, 'pgh_t'), COALESCE(v_cols.values, ''),
        p_from);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

-- Record every key the history of p_table shows but the table no longer has,
-- as a DELETE labeled baseline carrying the row's last recorded state.
CREATE FUNCTION history_track._record_gone(p_table regclass) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET constraint_exclusion = off    -- it reads the table: see _untrusted_code()
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 1
SET bytea_output = 'hex'
SET lc_monetary = 'C'
SET TimeZone = 'UTC'
SET timezone_abbreviations = 'Default'
SET quote_all_identifiers = off
SET array_nulls = on
AS $$
DECLARE
    v_table history_track.tracked_table := history_track._tracked(p_table);
    v_cols  record;
    v_gone  bigint;
BEGIN
    SELECT string_agg(format(', %I', a.attname), '' ORDER BY a.attnum) AS targets,
           string_agg(format(', pgh_r.%I', a.attname), '' ORDER BY a.attnum) AS values
      INTO v_cols
      FROM pg_attribute AS a
     WHERE a.attrelid = v_table.event_table AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname::text <> ALL (history_track._pgh_columns());
    EXECUTE format(
        E'INSERT INTO %1$s (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context%2$s)\n'
        ' SELECT pg_catalog.now(), ''baseline'', ''DELETE'', pgh_r.pgh_obj_id, pgh_c.context_id, pgh_c.context%3$s\n'
        '   FROM history_track._context() AS pgh_c,\n'
        '        (%4$s) AS pgh_r\n'
        '  WHERE NOT EXISTS (SELECT FROM %5$s%6$s AS pgh_t WHERE %7$s = pgh_r.pgh_obj_id)',
        history_track._qualified(v_table.event_table), COALESCE(v_cols.targets, ''), COALESCE(v_cols.values, ''),
        history_track._replay_sql(p_table, false, 'events'),
        history_track._only(p_table), history_track._qualified(p_table),
        history_track._obj_id_sql(p_table, 'pgh_t'))
    USING now(), history_track._state_labels();
    GET DIAGNOSTICS v_gone = ROW_COUNT;
    RETURN v_gone;
END
$$;

-- Record the baseline of p_table: every key the history still shows but the
-- table no longer has (rows deleted while the table was not tracked), then
-- every row as it is now (BASELINE). Writes are locked out meanwhile, so no
-- write can fall between the rows read and the events written. Everything is
-- compared as history stores it.
CREATE FUNCTION history_track._record_baseline(p_table regclass) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM history_track._citus_refuse(p_table, 'a baseline');   -- Citus (45_citus.sql)
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', history_track._qualified(p_table));
    RETURN history_track._record_gone(p_table)
           + history_track._record_rows(p_table, 'BASELINE',
                 format('%s%s AS pgh_t', history_track._only(p_table), history_track._qualified(p_table)));
END
$$;

-- Record every row of p_table whose values differ from what its history
-- replays to now, as it now is (label baseline, BASELINE), and every key the
-- history shows but the table no longer has (baseline, DELETE): what an
-- ALTER TABLE or ALTER TYPE changed without DML (a column added with a
-- default, a USING conversion, a table rewritten, an enum's label renamed).
-- Compared as history stores the values, by binary image.
CREATE FUNCTION history_track._resync(p_table regclass) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET constraint_exclusion = off    -- it reads the table: see _untrusted_code()
SET DateStyle = 'ISO, YMD'
SET IntervalStyle = 'postgres'
SET extra_float_digits = 1
SET bytea_output = 'hex'
SET lc_monetary = 'C'
SET TimeZone = 'UTC'
SET timezone_abbreviations = 'Default'
SET quote_all_identifiers = off
SET array_nulls = on
AS $$
DECLARE
    v_table history_track.tracked_table := history_track._tracked(p_table);
    v_cols  record;
    v_count bigint;
BEGIN
    IF NOT history_track._has_default_trackers(p_table) THEN
        RETURN 0::bigint;   -- nothing replays
    END IF;
    -- Citus (45_citus.sql): its planner cannot run this comparison on a distributed table.
    PERFORM history_track._citus_refuse(p_table, 'an ALTER TABLE that changes values without DML',
        'Add a column without a default, then set its default (ALTER COLUMN ... SET DEFAULT) and fill the rows with an UPDATE, '
        'which is recorded.');
    SELECT * INTO v_cols FROM history_track._recorded_lists(p_table, 'pgh_t');
    EXECUTE format(
        E'WITH pgh_r AS MATERIALIZED (%1$s)\n'
        'INSERT INTO %2$s (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context%3$s)\n'
        ' SELECT pg_catalog.now(), ''baseline'', ''BASELINE'', %4$s, pgh_c.context_id, pgh_c.context%5$s\n'
        '   FROM history_track._context() AS pgh_c, %6$s%7$s AS pgh_t\n'
        '  WHERE NOT EXISTS (SELECT FROM pgh_r WHERE pgh_r.pgh_obj_id = %4$s\n'
        '                      AND pg_catalog.record_image_eq(ROW(%8$s), ROW(%9$s)))',
        history_track._replay_sql(p_table, false, 'events'), history_track._qualified(v_table.event_table),
        COALESCE(v_cols.targets, ''), history_track._obj_id_sql(p_table, 'pgh_t'), COALESCE(v_cols.values, ''),
        history_track._only(p_table), history_track._qualified(p_table),
        COALESCE(v_cols.now, 'NULL'), COALESCE(v_cols.replayed, 'NULL'))
    USING now(), history_track._state_labels();
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count + history_track._record_gone(p_table);
END
$$;
