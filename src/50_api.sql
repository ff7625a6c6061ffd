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
