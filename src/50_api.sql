-- The public API: track_table, untrack_table, history_trackers.

-- Every catalog change starts here: tbl must be given, the caller must own
-- it, and the table is locked against every ALTER TABLE and every write
-- (SHARE ROW EXCLUSIVE, what CREATE TRIGGER takes), *then* changes are
-- serialised: so an ALTER TABLE either finishes before the change reads the
-- table's columns, or waits for the change to commit and then follows it
-- (80_lifecycle.sql), and no write falls between the catalog change and the
-- triggers. (Lock order: the table, then the catalog -- as ALTER TABLE,
-- which holds its table when it follows it, takes them. The catalog lock
-- lets readers be.)
CREATE FUNCTION history_track._begin_change(p_table regclass, p_call text, p_lock boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_table IS NULL THEN
        RAISE EXCEPTION 'tbl must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = format('Pass the table, e.g. %s(''orders'').', p_call);
    END IF;
    PERFORM history_track._assert_owner(p_table);
    PERFORM history_track._citus_begin(p_table, p_call);   -- Citus (45_citus.sql): what it refuses, settings
    IF NOT p_lock THEN
        RETURN;
    END IF;
    -- (Its DDL, too, is followed in READ COMMITTED only: _assert_fresh_catalog.)
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION '% needs a READ COMMITTED transaction', p_call
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = format('It reads history_track''s catalog and the table''s triggers as they are now; under %s it would '
                                  'read them as of this transaction''s snapshot.', upper(current_setting('transaction_isolation'))),
                  HINT = format('Call %s in a READ COMMITTED transaction.', p_call);
    END IF;
    IF (SELECT c.relkind IN ('r', 'p') FROM pg_class AS c WHERE c.oid = p_table) THEN
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', history_track._qualified(p_table));
    END IF;
    -- (A lock on the catalog table, not an advisory lock: any role could hold
    -- that one, and keep everybody from tracking.)
    LOCK TABLE history_track.tracked_table IN EXCLUSIVE MODE;
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
    SELECT array_agg(n ORDER BY o) INTO v_missing
      FROM unnest(p_names) WITH ORDINALITY AS u(n, o)
     WHERE NOT EXISTS (SELECT FROM pg_attribute AS a
                        WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
                          AND a.attname::text = u.n);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', v_missing[1], p_table
            USING ERRCODE = 'undefined_column',
                  DETAIL = format('%s names columns the table does not have: %s.',
                                  p_option, array_to_string(v_missing, ', ')),
                  HINT = format('%s takes column names exactly as the table spells them (case matters).', p_option);
    END IF;
END
$$;

-- Create the event table of p_table, or bring an existing one up to date with
-- the table's columns. Returns the event table. Every column is of the type
-- history stores its column as (_stored_type), pgh_obj_id too.
-- (Long on purpose: creating the table and bringing it up to date share
-- the column list and its checks.)
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
    SELECT t.event_table INTO v_event FROM history_track.tracked_table AS t WHERE t.table_name = p_table;

    IF v_event IS NULL THEN
        SELECT n.nspname, c.relname, r.rolname INTO v_schema, v_name, v_owner
          FROM pg_class AS c
          JOIN pg_namespace AS n ON n.oid = c.relnamespace
          JOIN pg_roles AS r ON r.oid = c.relowner
         WHERE c.oid = p_table;
        v_name := history_track._event_table_name(v_name);
        IF EXISTS (SELECT FROM pg_class AS c
                    WHERE c.relname = v_name
                      AND c.relnamespace = (SELECT n.oid FROM pg_namespace AS n WHERE n.nspname = v_schema)) THEN
            RAISE EXCEPTION 'cannot create event table %.%: a relation of that name exists',
                            quote_ident(v_schema), quote_ident(v_name)
                USING ERRCODE = 'duplicate_table',
                      DETAIL = format('The history of %s is kept in %I.%I, and that name is taken by a relation history_track did not '
                                      'create.',
                                      p_table, v_schema, v_name),
                      HINT = 'Rename or drop that relation, then track the table again.';
        END IF;

        EXECUTE format(
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
            (SELECT string_agg(format(E',\n    %I %s%s', m.attname, m.type_sql, m.collation_sql), '')
               FROM history_track._mirrored_columns(p_table, p_columns, p_exclude) AS m));
        v_event := format('%I.%I', v_schema, v_name)::regclass;
        -- Serves a row's history (all events of one object, in order), the
        -- previous event each diff compares with, and one row's replay.
        EXECUTE format('CREATE INDEX ON %s (pgh_obj_id, pgh_id)', history_track._qualified(v_event));
        -- Serves following a row back through a key change and replay's
        -- "did this key leave the table": partial, so only the rare updates
        -- that change a key pay for it.
        EXECUTE format('CREATE INDEX ON %s (pgh_old_obj_id, pgh_id) WHERE pgh_old_obj_id IS NOT NULL',
                       history_track._qualified(v_event));
        -- Serves history_context_events() (a context id carries its time) and
        -- time ranges. BRIN: events are appended in time order, and it costs
        -- the writes next to nothing.
        EXECUTE format('CREATE INDEX ON %s USING brin (pgh_created_at)', history_track._qualified(v_event));
        PERFORM history_track._protect_event_table(v_event);
        EXECUTE format('COMMENT ON TABLE %s IS %L', history_track._qualified(v_event),
                       format('History of %s, written by history_track; append-only', history_track._qualified(p_table)));
        IF v_owner <> CURRENT_USER THEN
            EXECUTE format('GRANT SELECT ON %s TO %I WITH GRANT OPTION', history_track._qualified(v_event), v_owner);
        END IF;
        INSERT INTO history_track.tracked_table (table_name, event_table, columns, exclude, tracked_by)
        VALUES (p_table, v_event, p_columns, COALESCE(p_exclude, '{}'), history_track._caller());
        INSERT INTO history_track.event_table (event_table, history_of) VALUES (v_event, p_table::text);
        PERFORM history_track._remember_columns(p_table);
        RETURN v_event;
    END IF;

    -- The event table exists: every mirrored column must be there with the same type.
    SELECT format_type(a.atttypid, a.atttypmod) INTO v_existing
      FROM pg_attribute AS a WHERE a.attrelid = v_event AND a.attname = 'pgh_obj_id';
    IF v_existing <> v_objtype THEN
        RAISE EXCEPTION 'primary key of table % no longer matches its event table %', p_table, v_event
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = format('pgh_obj_id is %s, the key now needs %s.', v_existing, v_objtype),
                  HINT = 'Keep the old history under another name (ALTER TABLE ... RENAME), untrack with drop_events => true, and track '
                         'again.';
    END IF;
    FOR v_column IN
        SELECT m.attname, m.type_sql, m.collation_sql
          FROM history_track._mirrored_columns(p_table, p_columns, p_exclude) AS m
    LOOP
        SELECT format_type(a.atttypid, a.atttypmod) INTO v_existing
          FROM pg_attribute AS a
         WHERE a.attrelid = v_event AND a.attname = v_column.attname AND NOT a.attisdropped;
        IF NOT FOUND THEN
            EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s%s', history_track._qualified(v_event),
                           v_column.attname, v_column.type_sql, v_column.collation_sql);
        ELSIF v_existing <> v_column.type_sql THEN
            RAISE EXCEPTION 'column "%" of table % is stored as %, but its event table % has %',
                            v_column.attname, p_table, v_column.type_sql, v_event, v_existing
                USING ERRCODE = 'datatype_mismatch',
                      DETAIL = 'The column''s type changed while the table was not tracked.',
                      HINT = 'Keep the old history under another name (ALTER TABLE ... RENAME), untrack with drop_events => true, and '
                             'track again.';
        END IF;
    END LOOP;
    RETURN v_event;
END
$$;

-- track_table()'s options, checked and cleaned: operations lower case, in
-- order, defaulted as the other options imply; every name a column; the
-- column choice the event table already has. Raises on the first bad one.
-- (Long on purpose: one block per option, each with its own error, in the
-- order a user reads them; operations, snapshot and label depend on each
-- other and are checked together.)
CREATE FUNCTION history_track._track_options(
    p_table regclass, p_label text, p_operations text[], p_has_condition boolean, p_changed text[],
    p_snapshot text, p_columns text[], p_exclude text[],
    OUT operations text[], OUT snapshot text, OUT changed name[], OUT columns name[], OUT exclude name[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_stored history_track.tracked_table;
    v_bad    text;
BEGIN
    snapshot := lower(p_snapshot);
    changed := p_changed::name[];
    columns := p_columns::name[];
    exclude := p_exclude::name[];

    IF snapshot IS NOT NULL AND snapshot <> ALL (ARRAY['old', 'new']) THEN
        RAISE EXCEPTION 'unknown snapshot %', quote_literal(p_snapshot)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'snapshot is ''old'' (the row before the change) or ''new'' (the row after it).';
    END IF;
    IF p_operations IS NOT NULL THEN
        SELECT o INTO v_bad FROM unnest(p_operations) AS o
         WHERE o IS NULL OR lower(o) <> ALL (history_track._operations())
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'unknown operation %', COALESCE(quote_literal(v_bad), 'NULL')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'operations is a non-empty subset of {insert,update,delete}.';
        ELSIF cardinality(p_operations) = 0 THEN
            RAISE EXCEPTION 'operations must not be empty'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'operations is a non-empty subset of {insert,update,delete}; leave it out for all three.';
        END IF;
        -- Lower case, no duplicates, in the order insert, update, delete.
        operations := ARRAY(SELECT o FROM unnest(history_track._operations()) AS o
                             WHERE o = ANY (SELECT lower(x) FROM unnest(p_operations) AS x));
    ELSIF p_label IS NOT NULL AND changed IS NOT NULL THEN
        -- changed is about updates: a labeled tracker watching columns is an
        -- update tracker (django-pghistory's UpdateEvent).
        operations := ARRAY['update'];
    ELSIF p_label IS NOT NULL AND snapshot = 'old' THEN
        operations := ARRAY['update', 'delete'];     -- the rows that have an old version
    ELSIF p_label IS NOT NULL AND snapshot = 'new' THEN
        operations := ARRAY['insert', 'update'];     -- the rows that have a new version
    ELSE
        operations := history_track._operations();
    END IF;

    IF snapshot = 'old' AND 'insert' = ANY (operations) THEN
        RAISE EXCEPTION 'snapshot ''old'' cannot be stored for inserts'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'An inserted row has no old version.',
                  HINT = 'Leave insert out of operations, or use snapshot => ''new''.';
    END IF;
    IF snapshot = 'new' AND 'delete' = ANY (operations) THEN
        RAISE EXCEPTION 'snapshot ''new'' cannot be stored for deletes'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A deleted row has no new version.',
                  HINT = 'Leave delete out of operations, or use snapshot => ''old''.';
    END IF;
    IF changed IS NOT NULL THEN
        IF NOT 'update' = ANY (operations) THEN
            RAISE EXCEPTION 'changed applies to updates, but operations has no update'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Add update to operations, or leave changed out.';
        END IF;
        IF cardinality(changed) = 0 THEN
            RAISE EXCEPTION 'changed must name at least one column'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Leave changed out to record an update when any tracked column changed.';
        END IF;
        PERFORM history_track._assert_columns(p_table, changed::text[], 'changed');
    END IF;
    IF columns IS NOT NULL THEN
        PERFORM history_track._assert_columns(p_table, columns::text[], 'columns');
        SELECT a.attname::text INTO v_bad FROM pg_attribute AS a
         WHERE a.attrelid = p_table AND a.attname = ANY (columns) AND a.attgenerated = 'v'
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'column "%" of table % is a virtual generated column', v_bad, p_table
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'Virtual generated columns have no stored value to record; they follow from the columns they are computed '
                               'from.',
                      HINT = 'Leave it out of columns; mirror the columns it is computed from.';
        END IF;
    END IF;
    IF exclude IS NOT NULL THEN
        PERFORM history_track._assert_columns(p_table, exclude::text[], 'exclude');
    END IF;

    -- Column choice is fixed when the event table is created.
    SELECT * INTO v_stored FROM history_track.tracked_table AS t WHERE t.table_name = p_table;
    IF FOUND THEN
        IF (columns IS NOT NULL
                AND (v_stored.columns IS NULL OR NOT (columns @> v_stored.columns AND columns <@ v_stored.columns)))
           OR (exclude IS NOT NULL AND NOT (exclude @> v_stored.exclude AND exclude <@ v_stored.exclude)) THEN
            RAISE EXCEPTION 'event table % already mirrors a different set of columns', v_stored.event_table
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('It was created with columns => %L, exclude => %L.', v_stored.columns, v_stored.exclude),
                      HINT = 'Leave columns and exclude out to keep the event table as it is, or untrack with drop_events => true and '
                             'track again.';
        END IF;
        columns := v_stored.columns;
        exclude := v_stored.exclude;
    END IF;
    IF NOT EXISTS (SELECT FROM history_track._mirrored_columns(p_table, columns, COALESCE(exclude, '{}'))) THEN
        RAISE EXCEPTION 'no columns of table % would be recorded', p_table
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'columns and exclude must leave at least one column.';
    END IF;

    IF p_label IS NULL THEN
        IF p_has_condition OR snapshot IS NOT NULL THEN
            RAISE EXCEPTION 'condition and snapshot need a label'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Without a label, track_table() declares the default trackers: insert, update (when a tracked column '
                               'changed) and delete.',
                      HINT = 'Name the tracker, e.g. track_table(''orders'', label => ''paid'', condition => ...).';
        END IF;
    ELSE
        IF btrim(p_label) = '' THEN
            RAISE EXCEPTION 'label must not be empty'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Name the event, e.g. label => ''paid''; leave label out for the default trackers.';
        END IF;
        IF p_label = ANY (history_track._operations()) THEN
            RAISE EXCEPTION 'label "%" is reserved for the default tracker', p_label
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('Leave label out and pass operations => ''{%s}'' for the default tracker, or choose another '
                                    'label.', p_label);
        END IF;
        IF p_label = ANY (history_track._state_labels()) THEN
            RAISE EXCEPTION 'label "%" is reserved', p_label
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'Events labeled insert, update, delete, baseline and revert are what history_as_of() replays.',
                      HINT = 'Choose another label.';
        END IF;
    END IF;
END
$$;

-- A tracker row, its fields set by name (so that it does not matter in which
-- order an upgraded catalog table has its columns).
CREATE FUNCTION history_track._new_tracker(p_table regclass, p_label text, p_operations text[],
                                           p_condition regprocedure, p_changed name[], p_snapshot text)
RETURNS history_track.tracker
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tracker history_track.tracker;
BEGIN
    v_tracker.table_name := p_table;
    v_tracker.label := p_label;
    v_tracker.operations := p_operations;
    v_tracker.condition := p_condition;
    v_tracker.changed := p_changed;
    v_tracker.snapshot := p_snapshot;
    v_tracker.created_by := history_track._caller();
    v_tracker.created_at := now();
    RETURN v_tracker;
END
$$;

-- The first half of track_table(): the caller may track tbl, the options
-- hold, and the event table and the row type conditions are parsed against
-- exist. Returns that row type.
-- SECURITY DEFINER: the event table and the row type are created as, and
-- owned by, the extension's owner. The caller must own tbl (checked first).
CREATE FUNCTION history_track._track_prepare(
    p_table regclass, p_label text, p_operations text[], p_has_condition boolean, p_changed text[],
    p_snapshot text, p_columns text[], p_exclude text[])
RETURNS regtype
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_options record;
BEGIN
    PERFORM history_track._begin_change(p_table, 'track_table');
    PERFORM history_track._assert_trackable(p_table);
    v_options := history_track._track_options(p_table, p_label, p_operations, p_has_condition, p_changed,
                                              p_snapshot, p_columns, p_exclude);
    PERFORM history_track._prepare_event_table(p_table, v_options.columns, v_options.exclude);
    RETURN history_track._row_type(p_table);
END
$$;

-- The second half of track_table(): the trackers, the compiled condition
-- (p_probe: what _parse_condition() made of it), the triggers, the baseline.
-- SECURITY DEFINER: the trigger functions are created as, and owned by, the
-- extension's owner. Checks everything again (anyone may call it): the
-- caller must own tbl, and p_probe's parse tree must pass the allowlist.
-- (Long on purpose: a SECURITY DEFINER entry point repeats its checks
-- before it acts, in one reading order: ownership, allowlist, catalog,
-- triggers, baseline.)
CREATE FUNCTION history_track._track_finish(
    p_table regclass, p_label text, p_operations text[], p_probe regprocedure, p_changed text[],
    p_snapshot text, p_columns text[], p_exclude text[], p_baseline boolean)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_options   record;
    v_table     history_track.tracked_table;
    v_want      history_track.tracker[] := '{}'::history_track.tracker[];
    v_tracker   history_track.tracker;
    v_old       history_track.tracker;
    v_op        text;
    v_row       regtype;
    v_reads     record;
BEGIN
    PERFORM history_track._begin_change(p_table, 'track_table');
    PERFORM history_track._assert_trackable(p_table);
    v_options := history_track._track_options(p_table, p_label, p_operations, p_probe IS NOT NULL, p_changed,
                                              p_snapshot, p_columns, p_exclude);
    PERFORM history_track._prepare_event_table(p_table, v_options.columns, v_options.exclude);
    v_row := history_track._row_type(p_table);
    v_table := history_track._tracked(p_table);

    -- The trackers this call declares.
    IF p_label IS NULL THEN
        FOREACH v_op IN ARRAY v_options.operations LOOP
            v_tracker := history_track._new_tracker(p_table, v_op, ARRAY[v_op], NULL,
                                                    CASE WHEN v_op = 'update' THEN v_options.changed END,
                                                    CASE WHEN v_op = 'delete' THEN 'old' ELSE 'new' END);
            v_want := v_want || v_tracker;
        END LOOP;
    ELSE
        IF p_probe IS NOT NULL THEN
            v_reads := history_track._check_condition_tree(p_probe, v_row, p_table, p_label);
            IF v_reads.reads_old AND v_options.operations = ARRAY['insert'] THEN
                RAISE EXCEPTION 'condition of tracker "%" on table % reads OLD, which an insert does not have', p_label, p_table
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = 'The tracker records only inserts, for which OLD is NULL: the condition could never hold as written.',
                          HINT = 'Test NEW in an insert tracker, or add update to operations.';
            ELSIF v_reads.reads_new AND v_options.operations = ARRAY['delete'] THEN
                RAISE EXCEPTION 'condition of tracker "%" on table % reads NEW, which a delete does not have', p_label, p_table
                    USING ERRCODE = 'invalid_parameter_value',
                          DETAIL = 'The tracker records only deletes, for which NEW is NULL: the condition could never hold as written.',
                          HINT = 'Test OLD in a delete tracker, or add update to operations.';
            END IF;
        END IF;
        v_tracker := history_track._new_tracker(p_table, p_label, v_options.operations, p_probe, v_options.changed,
                         COALESCE(v_options.snapshot,
                                  CASE WHEN v_options.operations = ARRAY['delete'] THEN 'old'
                                       WHEN NOT 'delete' = ANY (v_options.operations) THEN 'new' END));
        v_want := ARRAY[v_tracker];
    END IF;

    -- Declaring a tracker that exists is harmless; redefining one is refused.
    FOREACH v_tracker IN ARRAY v_want LOOP
        SELECT * INTO v_old FROM history_track.tracker AS t
         WHERE t.table_name = p_table AND t.label = v_tracker.label;
        IF NOT FOUND THEN
            IF v_tracker.condition IS NOT NULL THEN
                v_tracker.condition := history_track._compile_condition(
                    p_table, v_tracker.label, v_row, v_tracker.condition,
                    history_track._generated_name(v_table.table_id, 'c' || nextval('history_track.condition_id_seq')));
            END IF;
            INSERT INTO history_track.tracker SELECT (v_tracker).*;
        ELSIF (v_old.operations, v_old.changed::text[], v_old.snapshot, v_old.condition IS NULL)
              IS DISTINCT FROM (v_tracker.operations, v_tracker.changed::text[], v_tracker.snapshot, v_tracker.condition IS NULL)
              OR (v_old.condition IS NOT NULL
                  AND history_track._condition_text(v_old.condition) <> history_track._condition_text(v_tracker.condition)) THEN
            RAISE EXCEPTION 'tracker "%" already exists on table % with another definition', v_tracker.label, p_table
                USING ERRCODE = 'duplicate_object',
                      DETAIL = format('It has operations %s, condition %s, changed %s, snapshot %s.',
                                      v_old.operations, COALESCE(history_track._condition_text(v_old.condition), 'none'),
                                      COALESCE(v_old.changed::text, 'any column'), COALESCE(v_old.snapshot, 'per operation')),
                      HINT = format('Remove it first with untrack_table(%L, label => %L), or choose another label.',
                                    p_table::text, v_tracker.label);
        END IF;
    END LOOP;

    -- The caller's temporary function has served (it would hold the row type's
    -- columns against ALTER TABLE until the session ends).
    IF (SELECT p.pronamespace = pg_my_temp_schema() FROM pg_proc AS p WHERE p.oid = p_probe) THEN
        EXECUTE format('DROP FUNCTION %s', p_probe);
    END IF;

    IF p_baseline THEN
        IF NOT history_track._has_default_trackers(p_table) THEN
            RAISE EXCEPTION 'baseline needs the default trackers of table %', p_table
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'A baseline is the starting point history_as_of() replays the insert, update and delete events from.',
                      HINT = format('Call SELECT track_table(%L, baseline => true) without label.', p_table::text);
        END IF;
        IF current_setting('transaction_isolation') <> 'read committed' THEN
            RAISE EXCEPTION 'baseline needs READ COMMITTED isolation'
                USING ERRCODE = 'invalid_transaction_state',
                      DETAIL = 'The baseline must see every write committed before the table was locked; a snapshot taken earlier in the '
                               'transaction would miss some.',
                      HINT = 'Call track_table(..., baseline => true) in a READ COMMITTED transaction (the default).';
        END IF;
    END IF;

    PERFORM history_track._citus_distribute_event_table(p_table, v_table.event_table);   -- Citus (45_citus.sql)
    PERFORM history_track._generate(p_table);
    PERFORM history_track._warn_subscribed(p_table);
    IF p_baseline THEN
        PERFORM history_track._record_baseline(p_table);
    END IF;
    RETURN v_table.event_table;
END
$$;

CREATE FUNCTION @extschema@.track_table(
    tbl        regclass,
    label      text    DEFAULT NULL,
    operations text[]  DEFAULT NULL,
    condition  text    DEFAULT NULL,
    changed    text[]  DEFAULT NULL,
    snapshot   text    DEFAULT NULL,
    columns    text[]  DEFAULT NULL,
    exclude    text[]  DEFAULT NULL,
    baseline   boolean DEFAULT false
) RETURNS regclass
LANGUAGE plpgsql VOLATILE
-- SECURITY INVOKER on purpose: a condition is parsed by PostgreSQL as the
-- caller (35_condition.sql). The two halves around it are SECURITY DEFINER
-- and check the caller's ownership of tbl themselves (see _caller()).
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row    regtype;
    v_probe  regprocedure;
    v_event  regclass;
    v_acting bigint;
BEGIN
    v_acting := history_track._enter();
    v_row := history_track._track_prepare(tbl, label, operations, condition IS NOT NULL, changed, snapshot,
                                          columns, exclude);
    PERFORM history_track._leave(v_acting);
    IF condition IS NOT NULL THEN
        v_probe := history_track._parse_condition(tbl, label, v_row, condition);
    END IF;
    v_acting := history_track._enter();
    v_event := history_track._track_finish(tbl, label, operations, v_probe, changed, snapshot, columns, exclude,
                                           baseline);
    PERFORM history_track._leave(v_acting);
    RETURN v_event;
END
$$;

COMMENT ON FUNCTION @extschema@.track_table(regclass, text, text[], text, text[], text, text[], text[], boolean) IS
    'Record the history of a table: create its event table and the default trackers, or (with label) one named tracker; baseline => true '
    'also records every row as it is';

CREATE FUNCTION history_track._untrack_table(
    tbl         regclass,
    label       text,
    drop_events boolean
) RETURNS void
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: the trigger functions and event tables belong to the
-- extension's owner. The caller must own tbl (checked first).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_label  text := _untrack_table.label;
    v_stored history_track.tracked_table;
    v_count  bigint;
BEGIN
    PERFORM history_track._begin_change(tbl, 'untrack_table');

    SELECT * INTO v_stored FROM history_track.tracked_table AS t WHERE t.table_name = tbl;
    IF NOT FOUND THEN
        RAISE NOTICE 'table % is not tracked, skipping', tbl;
        RETURN;
    END IF;

    IF v_label IS NOT NULL THEN
        IF drop_events THEN
            RAISE EXCEPTION 'drop_events cannot be combined with label'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = 'All trackers of a table write to one event table.',
                      HINT = 'Remove the tracker with untrack_table(tbl, label => ...); drop the history with untrack_table(tbl, '
                             'drop_events => true).';
        END IF;
        DELETE FROM history_track.tracker AS t WHERE t.table_name = tbl AND t.label = v_label;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'tracker "%" does not exist on table %', v_label, tbl
                USING ERRCODE = 'undefined_object',
                      HINT = 'SELECT label FROM history_trackers WHERE table_name = ''...''::regclass lists them.';
        END IF;
    ELSE
        DELETE FROM history_track.tracker AS t WHERE t.table_name = tbl;
    END IF;

    IF EXISTS (SELECT FROM history_track.tracker AS t WHERE t.table_name = tbl) THEN
        PERFORM history_track._generate(tbl);
        PERFORM history_track._drop_conditions(tbl);
    ELSE
        PERFORM history_track._drop_generated(v_stored.table_id);
        DELETE FROM history_track.tracked_relation AS r WHERE r.table_name = tbl;
    END IF;

    IF drop_events THEN
        -- Logged, then forgotten (the sql_drop event trigger refuses to drop
        -- the event table of a table it still knows), then dropped.
        EXECUTE format('SELECT count(*) FROM %s', history_track._qualified(v_stored.event_table)) INTO v_count;
        PERFORM history_track._log_removal(tbl, v_stored.event_table, NULL, v_count, 'drop_events');
        DELETE FROM history_track.tracked_table AS t WHERE t.table_name = tbl;
        DELETE FROM history_track.event_table AS e WHERE e.event_table = v_stored.event_table;
        DELETE FROM history_track.chain_link AS l WHERE l.event_table = v_stored.event_table;
        DELETE FROM history_track.chain AS c WHERE c.event_table = v_stored.event_table;
        EXECUTE format('DROP TABLE %s', history_track._qualified(v_stored.event_table));
    END IF;
END
$$;

-- (SECURITY INVOKER: see _caller().)
CREATE FUNCTION @extschema@.untrack_table(
    tbl         regclass,
    label       text    DEFAULT NULL,
    drop_events boolean DEFAULT false
) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_acting bigint;
BEGIN
    v_acting := history_track._enter();
    PERFORM history_track._untrack_table(tbl, label, drop_events);
    PERFORM history_track._leave(v_acting);
END
$$;

COMMENT ON FUNCTION @extschema@.untrack_table(regclass, text, boolean) IS
    'Stop recording a table''s history (or, with label, remove one tracker); drop_events => true also drops its event table (logged in '
    'history_track.prune_log)';

-- The schema of the API, as an SQL identifier: what the Python client, the
-- CLI and the Django integration name every call with (a same-named function
-- in a schema earlier on someone's search_path must not stand in for ours).
CREATE FUNCTION history_track._api_schema() RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.quote_ident((pg_catalog.parse_ident('@extschema@'))[1])
$$;

CREATE VIEW @extschema@.history_trackers AS
SELECT t.table_name,
       tt.event_table,
       t.label,
       t.operations,
       history_track._condition_text(t.condition) AS condition,
       t.snapshot,
       t.changed
  FROM history_track.tracker AS t
  JOIN history_track.tracked_table AS tt ON tt.table_name OPERATOR(pg_catalog.=) t.table_name
 ORDER BY t.table_name::text, pg_catalog.array_position(history_track._operations(), t.label), t.label;

COMMENT ON VIEW @extschema@.history_trackers IS
    'One row per tracker: the table, its event table, label, operations, condition (as PostgreSQL prints it), stored row (snapshot) and '
    'watched columns (changed)';
