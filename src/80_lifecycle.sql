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
