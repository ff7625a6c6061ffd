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

-- What a revert writes, checked: p_table is tracked with the default
-- trackers, and its event table holds every column a revert must write.
-- key: the key columns; set: the other columns an update writes (not an
-- identity GENERATED ALWAYS); insert: every column an insert writes (not a
-- generated one).
CREATE FUNCTION history_track._revert_columns(p_table regclass, OUT key name[], OUT set name[], OUT insert name[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   history_track.tracked_table;
    v_missing text[];
BEGIN
    v_table := history_track._readable(p_table, 'a revert', current_user);
    IF NOT history_track._has_default_trackers(p_table) THEN
        RAISE EXCEPTION 'table % cannot be reverted: it does not have all three default trackers', p_table
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'A revert replays the insert, update and delete events, and is itself recorded by them.',
                  HINT = pg_catalog.format('Add them with SELECT track_table(%L).', p_table::text);
    END IF;
    -- Every column a revert writes must be in the history.
    SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) INTO v_missing
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_table AND a.attnum > 0
       AND NOT a.attisdropped AND a.attgenerated = ''
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS ea
                        WHERE ea.attrelid = v_table.event_table
                          AND ea.attname = a.attname AND NOT ea.attisdropped);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'table % cannot be reverted: its history does not record column "%"', p_table, v_missing[1]
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Event table %s has no column %s.', v_table.event_table,
                                             pg_catalog.array_to_string(v_missing, ', ')),
                  HINT = 'Only a table whose event table mirrors every column can be reverted (it was tracked with columns or exclude); '
                         'restore those rows by hand from history_as_of().';
    END IF;
    key := history_track._key_columns(p_table);
    SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum),
           pg_catalog.array_agg(a.attname ORDER BY a.attnum)
               FILTER (WHERE a.attname <> ALL (key) AND a.attidentity <> 'a')
      INTO insert, set
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_table AND a.attnum > 0
       AND NOT a.attisdropped AND a.attgenerated = '';
END
$$;

-- The condition a one-row revert puts on the table's rows (alias pgh_t): the
-- row whose key is $2.
CREATE FUNCTION history_track._revert_key_sql(p_table regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT history_track._key_match_sql(p_table, history_track._obj_id_sql(p_table, 'pgh_t'), '$2')
$$;

-- The statement a revert runs: it deletes the rows (all, or the one with key
-- $2) the source does not have, updates those that differ and inserts those
-- missing, and returns how many rows it wrote. p_source is the SQL of the
-- rows to restore, shaped like p_table; p_keys, p_set, p_insert: _revert_columns().
-- (A Citus distributed table takes three statements: _citus_revert().)
CREATE FUNCTION history_track._revert_sql(p_table regclass, p_source text, p_one_key boolean,
                                          p_keys name[], p_set name[], p_insert name[])
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One statement, reading the source once: the deletes, updates and
    -- inserts touch different keys (no ON CONFLICT, which a DEFERRABLE key
    -- could not serve).
    RETURN format(
        E'WITH pgh_r AS MATERIALIZED (%2$s),\n'
        ' pgh_d AS (DELETE FROM %9$s%1$s AS pgh_t WHERE %3$sNOT EXISTS (SELECT FROM pgh_r WHERE (%4$s) = (%5$s)) RETURNING 1),\n'
        ' pgh_u AS (%6$s),\n'
        ' pgh_i AS (INSERT INTO %1$s (%7$s) OVERRIDING SYSTEM VALUE SELECT %8$s FROM pgh_r\n'
        '        WHERE NOT EXISTS (SELECT FROM %9$s%1$s AS pgh_t WHERE (%4$s) = (%5$s)) RETURNING 1)\n'
        'SELECT (SELECT pg_catalog.count(*) FROM pgh_d) + (SELECT pg_catalog.count(*) FROM pgh_u)\n'
        '       + (SELECT pg_catalog.count(*) FROM pgh_i)',
        history_track._qualified(p_table),
        p_source,
        CASE WHEN p_one_key THEN history_track._revert_key_sql(p_table) || ' AND ' ELSE '' END,
        history_track._list('pgh_r.%I', p_keys),
        history_track._list('pgh_t.%I', p_keys),
        CASE WHEN p_set IS NULL THEN 'SELECT 1 WHERE false'
             ELSE history_track._revert_update_sql(p_table, 'pgh_r', p_keys, p_set) || ' RETURNING 1'
        END,
        history_track._list('%I', p_insert),
        history_track._list('pgh_r.%I', p_insert),
        history_track._only(p_table));
END
$$;

-- The UPDATE of a revert: the rows of p_table whose values differ from those
-- of the rows of p_source (a table or CTE name) with their key: p_keys, the
-- key columns, p_set, those to write.
CREATE FUNCTION history_track._revert_update_sql(p_table regclass, p_source text, p_keys name[], p_set name[]) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(
        'UPDATE %s%s AS pgh_t SET (%s) = ROW(%s) FROM %s AS pgh_r WHERE (%s) = (%s) '
        'AND pg_catalog.record_image_ne(ROW(%s), ROW(%s))',
        history_track._only(p_table), history_track._qualified(p_table),
        history_track._list('%I', p_set), history_track._list('pgh_r.%I', p_set),
        p_source,
        history_track._list('pgh_r.%I', p_keys), history_track._list('pgh_t.%I', p_keys),
        history_track._list('pgh_t.%I', p_set), history_track._list('pgh_r.%I', p_set))
$$;

-- Run a revert of p_table (of the row with key $2, or, locked against
-- writes, of the whole table) to the rows of p_source (parameters: $1 the
-- moment, $2 the key, $3 the event), labeled 'revert'; returns the number of
-- rows written.
CREATE FUNCTION history_track._revert(p_table regclass, p_source text, p_one_key boolean,
                                      p_ts timestamptz, p_key text, p_event bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_label   text := pg_catalog.current_setting('history_track.label', true);
    v_columns record := history_track._revert_columns(p_table);
    v_count   bigint;
    v_saved   text[];
BEGIN
    -- (the table's rows are matched by their keys as history stores them)
    v_saved := history_track._pin_key_settings(p_table);
    IF NOT p_one_key THEN
        -- No write may come between the replay and the writes that restore it.
        EXECUTE pg_catalog.format('LOCK TABLE %s IN EXCLUSIVE MODE', p_table);
    END IF;
    PERFORM history_track._set_label('revert');   -- the writes below are a revert
    IF history_track._citus_distributed(p_table) THEN
        v_count := history_track._citus_revert(p_table, p_source, p_one_key, v_columns.key, v_columns.set, v_columns.insert,
                                               p_ts, p_key, p_event);
    ELSE
        EXECUTE history_track._revert_sql(p_table, p_source, p_one_key, v_columns.key, v_columns.set, v_columns.insert)
           INTO v_count USING p_ts, p_key, p_event;
    END IF;
    PERFORM history_track._set_label(COALESCE(v_label, ''));
    PERFORM history_track._restore_settings(v_saved);
    RETURN v_count;
END
$$;

-- The event table of p_table, for revert_row(tbl, event): its rows as p_table's
-- rows, and the key of an event as text.
CREATE FUNCTION history_track._event_row_sql(p_table regclass, OUT row_sql text, OUT key_sql text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table history_track.tracked_table := history_track._readable(p_table, 'revert_row', current_user);
BEGIN
    -- The event's row as p_table's row: each column cast back from the
    -- type history stores it as (with the caller's privileges).
    row_sql := format(
        'SELECT %s FROM %s AS pgh_e WHERE pgh_e.pgh_id = $3 AND pgh_e.pgh_operation <> ALL (''{DELETE,TRUNCATE}'')',
        (SELECT string_agg(CASE WHEN a.attgenerated = '' AND (ea.atttypid, ea.atttypmod) = (a.atttypid, a.atttypmod)
                                THEN format('pgh_e.%I', a.attname)
                                WHEN a.attgenerated = '' AND ea.attname IS NOT NULL
                                THEN format('pgh_e.%I::%s AS %1$I', a.attname, format_type(a.atttypid, a.atttypmod))
                                ELSE format('NULL::%s AS %I', format_type(a.atttypid, a.atttypmod), a.attname)
                           END, ', ' ORDER BY a.attnum)
           FROM pg_attribute AS a
           LEFT JOIN pg_attribute AS ea ON ea.attrelid = v_table.event_table AND ea.attname = a.attname AND NOT ea.attisdropped
          WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped),
        history_track._qualified(v_table.event_table));
    key_sql := format(
        'SELECT pg_catalog.format(''%%s'', pgh_e.pgh_obj_id) FROM %s AS pgh_e WHERE pgh_e.pgh_id = $1',
        history_track._qualified(v_table.event_table));
END
$$;

CREATE FUNCTION @extschema@.revert_table(tbl regclass, ts timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET constraint_exclusion = off    -- the table owner's CHECK code is not planned: see _untrusted_code()
AS $$
BEGIN
    IF tbl IS NULL OR ts IS NULL THEN
        RAISE EXCEPTION 'tbl and ts must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the table and the moment to go back to: revert_table(''orders'', now() - interval ''1 hour'').';
    END IF;
    RETURN history_track._revert(tbl, pg_catalog.format('SELECT * FROM history_track._history_as_of(NULL::%s, $1, NULL)', tbl), false,
                                 ts, NULL, NULL);
END
$$;

COMMENT ON FUNCTION @extschema@.revert_table(regclass, timestamptz) IS
    'Restore a tracked table to its state at a moment; the writes are recorded with label revert; returns the number of rows written';

CREATE FUNCTION @extschema@.revert_row(tbl regclass, key text, ts timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET constraint_exclusion = off    -- the table owner's CHECK code is not planned: see _untrusted_code()
AS $$
BEGIN
    IF tbl IS NULL OR key IS NULL OR ts IS NULL THEN
        RAISE EXCEPTION 'tbl, key and ts must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the table, the row''s key and the moment: revert_row(''orders'', ''42'', now() - interval ''1 hour'').';
    END IF;
    RETURN history_track._revert(tbl, pg_catalog.format('SELECT * FROM history_track._history_as_of(NULL::%s, $1, $2)', tbl), true,
                                 ts, key, NULL);
END
$$;

CREATE FUNCTION @extschema@.revert_row(tbl regclass, key anyelement, ts timestamptz) RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT @extschema@.revert_row(tbl, history_track._key_text(tbl, key), ts)
$$;

CREATE FUNCTION @extschema@.revert_row(tbl regclass, event bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET constraint_exclusion = off    -- the table owner's CHECK code is not planned: see _untrusted_code()
AS $$
DECLARE
    v_event record;
    v_key   text;
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
    RETURN history_track._revert(tbl, v_event.row_sql, true, NULL, v_key, event);
END
$$;

COMMENT ON FUNCTION @extschema@.revert_row(regclass, text, timestamptz) IS
    'Restore one row (by key) to its state at a moment: rewritten, re-inserted or deleted; recorded with label revert';
COMMENT ON FUNCTION @extschema@.revert_row(regclass, anyelement, timestamptz) IS
    'Restore one row, its key given as a value of any type, to its state at a moment';
COMMENT ON FUNCTION @extschema@.revert_row(regclass, bigint) IS
    'Restore one row to the state an event recorded (a delete event: delete the row); recorded with label revert';
