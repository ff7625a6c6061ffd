-- Trigger generation: the one place that writes trigger code.
--
-- For every tracked table and every operation (insert, update, delete) that
-- has at least one tracker, _generate() writes one trigger function
--     history_track._t<table_id>_<operation>()
-- and one AFTER ... FOR EACH STATEMENT trigger "history_track_<operation>" on
-- the table (and on each partition). The function holds one INSERT ... SELECT
-- per tracker, reading the statement's transition tables (pgh_old_rows /
-- pgh_new_rows), so a bulk statement writes its events in one pass instead of
-- one function call per row.
--
-- Updates pair the old and new transition rows by position: PostgreSQL appends
-- the old and the new version of each updated row to the two transition tables
-- together, so the n-th old row and the n-th new row are the same row, even
-- when the update changed its primary key.
--
-- The generated functions are SECURITY DEFINER and owned by the extension's
-- owner, who also owns the event tables: that is what lets any role allowed to
-- write the table record history it cannot itself write, rewrite or skip.
-- They pin search_path and qualify every function and operator they call, and
-- they run no code a non-superuser defined: values go into the event table as
-- their stored types (_stored_value_sql: no cast, input function or domain
-- constraint of the table owner's), changes are told by binary image
-- (record_image_ne: no type's equality operator), and a condition is a
-- compiled function of PostgreSQL's own parse tree (35_condition.sql). Every
-- name in the generated code is the pgh_ prefixed one history_track reserves
-- (a tracked table has no column so named), so no column name can capture it.

-- The row a condition reads, built from the transition row aliased p_alias:
-- the row type's attributes the condition reads, as history stores them, the
-- others NULL (so PostgreSQL inlines the condition and computes only those).
CREATE FUNCTION history_track._condition_row_sql(p_table regclass, p_condition regprocedure, p_alias text)
RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('ROW(%s)::%s',
                  string_agg(CASE WHEN ra.attname = ANY (history_track._condition_columns(p_condition))
                                  THEN history_track._stored_value_sql(format('%I.%I', p_alias, ta.attname),
                                                                       ta.atttypid, ta.atttypmod)
                                  ELSE 'NULL' END, ', ' ORDER BY ra.attnum),
                  rt.oid::regtype)
      FROM pg_proc AS p
      JOIN pg_type AS rt ON rt.oid = p.proargtypes[0]
      JOIN pg_attribute AS ra ON ra.attrelid = rt.typrelid AND ra.attnum > 0 AND NOT ra.attisdropped
      LEFT JOIN pg_attribute AS ta ON ta.attrelid = p_table AND ta.attname = ra.attname AND NOT ta.attisdropped
     WHERE p.oid = p_condition
     GROUP BY rt.oid
$$;

-- Whether pgh_obj_id's form depends on settings (DateStyle, TimeZone,
-- extra_float_digits, ...): the JSON of a composite key, unless each key
-- column's JSON form is fixed, or the text form of a one-column key of a
-- composite or range type of a non-superuser's. A key written in two forms
-- would be two rows to the history: a writer could SET TimeZone and have its
-- DELETE recorded under another key. What writes or matches such keys pins
-- the settings (_output_settings).
CREATE FUNCTION history_track._key_form_varies(p_table regclass) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT FROM (SELECT history_track._key_columns(p_table) AS cols) AS k
         CROSS JOIN LATERAL unnest(k.cols) AS u(col)
          JOIN pg_attribute AS a ON a.attrelid = p_table AND a.attname = u.col
          JOIN pg_type AS t ON t.oid = a.atttypid
         CROSS JOIN LATERAL history_track._stored_type(a.atttypid, a.atttypmod) AS s
         WHERE CASE WHEN cardinality(k.cols) > 1
                    -- (JSON writes dates and timestamps without a time zone in
                    -- ISO form whatever DateStyle says; timetz carries its own
                    -- offset)
                    THEN s.stored <> ALL ('{smallint,integer,bigint,numeric,text,"character varying",character,"\"char\"",name,'
                                          'boolean,uuid,oid,date,"timestamp without time zone","time without time zone",'
                                          '"time with time zone",inet,cidr,macaddr}'::regtype[]::oid[])
                    ELSE s.via = 'text' AND t.typtype <> 'e' END)
$$;

-- Whether what history stores of a row of p_table depends on settings: the
-- text form of a column it stores as text (a composite or range type of a
-- non-superuser's; an enum's labels do not vary), or the key's form.
CREATE FUNCTION history_track._text_forms_vary(p_table regclass) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (
        SELECT FROM pg_attribute AS a
         CROSS JOIN LATERAL history_track._stored_type(a.atttypid, a.atttypmod) AS s
         WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped AND s.via = 'text'
           AND NOT EXISTS (SELECT FROM pg_type AS t
                            WHERE t.oid = a.atttypid
                              AND (t.typtype = 'e' OR (SELECT e.typtype FROM pg_type AS e WHERE e.oid = t.typelem) = 'e')))
        OR history_track._key_form_varies(p_table)
$$;

-- The settings text and JSON forms depend on, with the values history_track
-- writes them with; conditions (p_conditions) also read the locales
-- (to_char). The trigger functions of a table whose stored forms vary
-- (_text_forms_vary) or whose conditions do (_condition_varies) carry them
-- as SET clauses (_stable_output_settings); so do the functions that write
-- events of a table's rows outside the triggers (manual events, baselines:
-- their SET clauses say the same, tests/test_attacks.py checks it); the
-- functions that find a row by a key a caller gives pin them only where the
-- key's form varies (_pin_key_settings), the caller's key text being read
-- with the caller's own settings otherwise.
CREATE FUNCTION history_track._output_settings(p_conditions boolean DEFAULT false) RETURNS TABLE (name text, setting text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.name, s.setting
      FROM (VALUES (1, 'DateStyle', 'ISO, YMD'), (2, 'IntervalStyle', 'postgres'), (3, 'extra_float_digits', '1'),
                   (4, 'bytea_output', 'hex'), (5, 'lc_monetary', 'C'), (6, 'TimeZone', 'UTC'),
                   (7, 'timezone_abbreviations', 'Default'), (8, 'quote_all_identifiers', 'off'), (9, 'array_nulls', 'on'),
                   (10, 'lc_time', 'C'), (11, 'lc_numeric', 'C')) AS s(n, name, setting)
     WHERE s.n <= 9 OR p_conditions
     ORDER BY s.n
$$;

-- _output_settings() as SET clauses.
CREATE FUNCTION history_track._stable_output_settings(p_conditions boolean) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(format(E'SET %s = %L\n', s.name, s.setting), '') FROM history_track._output_settings(p_conditions) AS s
$$;

-- Pin _output_settings() for the rest of the transaction (set_config(...,
-- true)) when p_table's key form varies; returns what _restore_settings()
-- puts back (NULL: nothing was pinned).
CREATE FUNCTION history_track._pin_key_settings(p_table regclass) RETURNS text[]
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_saved text[];
BEGIN
    IF NOT history_track._key_form_varies(p_table) THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(array[s.name, current_setting(s.name)] ORDER BY s.name) INTO v_saved
      FROM history_track._output_settings() AS s;
    PERFORM set_config(s.name, s.setting, true) FROM history_track._output_settings() AS s;
    RETURN v_saved;
END
$$;

CREATE FUNCTION history_track._restore_settings(p_saved text[]) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT set_config(p_saved[i][1], p_saved[i][2], true) FROM generate_subscripts(p_saved, 1) AS i
$$;

-- A statement id for a single-row update that changed its key: nextval() of
-- the event table's sequence, declared STABLE on purpose. A volatile call in
-- the statement's select list keeps PostgreSQL from flattening the INSERT's
-- SELECT, which costs every single-row update more than its event's index
-- entries; called in a CASE that only a changed key reaches, it draws at most
-- once per statement (one row), so nothing relies on it being stable.
CREATE FUNCTION history_track._statement_id(p_sequence regclass) RETURNS bigint
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nextval(p_sequence)
$$;

-- Whether the columns p_columns of p_table differ between the transition
-- rows pgh_old and pgh_new, by binary image: no type's equality operator runs,
-- every type compares (json, point, ...), and 1.0 -> 1.00 is a change. For the
-- built-in types whose equality is their binary image (integers, text of a
-- deterministic collation, ...), IS DISTINCT FROM says the same for less (no
-- row of each side to form); the operator is PostgreSQL's own (search_path is
-- pinned, and operators are never looked up in pg_temp). The other columns are
-- compared as one row image.
CREATE FUNCTION history_track._changed_sql(p_table regclass, p_columns name[]) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_to_string(
               array_agg(format('pgh_old.%1$I IS DISTINCT FROM pgh_new.%1$I', c.name) ORDER BY c.ord)
                   FILTER (WHERE c.by_equality)
               || CASE WHEN bool_and(c.by_equality) THEN '{}'::text[]
                       ELSE ARRAY[format('pg_catalog.record_image_ne(ROW(%s), ROW(%s))',
                                         string_agg(format('pgh_old.%I', c.name), ', ' ORDER BY c.ord)
                                             FILTER (WHERE NOT c.by_equality),
                                         string_agg(format('pgh_new.%I', c.name), ', ' ORDER BY c.ord)
                                             FILTER (WHERE NOT c.by_equality))] END,
               ' OR ')
      FROM (SELECT u.name, u.ord,
                   a.atttypid = ANY ('{bool,"char",int2,int4,int8,oid,text,varchar,bytea,uuid,date,time,timestamp,timestamptz}'
                                     ::regtype[]::oid[])
                   AND (a.attcollation = 0 OR EXISTS (SELECT FROM pg_collation AS k
                                                       WHERE k.oid = a.attcollation AND k.collisdeterministic)) AS by_equality
              FROM unnest(p_columns) WITH ORDINALITY AS u(name, ord)
              JOIN pg_attribute AS a ON a.attrelid = p_table AND a.attname = u.name AND NOT a.attisdropped) AS c
$$;

-- The INSERT ... SELECT that one tracker runs for one operation. It reads the
-- context from the trigger function's variables pgh_fn.pgh_ctx_id, .pgh_ctx and
-- .pgh_ctx_label (read once per statement; qualified with the function's
-- block label, so that no column can stand for them); with p_check, the variant executed
-- once at track_table time, against empty stand-ins, with NULL context.
-- 'truncate' is the delete trackers' statement reading the relation being
-- truncated (p_relation: the table, or one partition of its tree) before it
-- is emptied.
--
-- Updates that change the primary key also store the old key
-- (pgh_old_obj_id) and pgh_statement_id, a value drawn once per statement
-- from pgh_id's own sequence, so below every event the statement writes (one
-- row's: right after its event's, see below): it
-- tells replay which key changes happened in the same statement (a swap of
-- two keys is not a delete of either) and where a moved row's history
-- continues under its old key. Both are NULL on every other event.
--
-- With p_single, the variant of an update's statement for a statement that
-- changed at most one row: the one old and the one new row need no pairing
-- (no window, no join to plan), and the statement id is drawn for the row.
-- (Long on purpose: the one statement a tracker runs, assembled in one
-- place: columns, key, context, condition, pairing.)
CREATE FUNCTION history_track._tracker_sql(p_table regclass, p_label text, p_operation text,
                                           p_check boolean DEFAULT false, p_relation regclass DEFAULT NULL,
                                           p_single boolean DEFAULT false)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   history_track.tracked_table := history_track._tracked(p_table);
    v_tracker history_track.tracker;
    v_cols    record;
    v_changed name[];
    v_snap    text;
    v_from    text;
    v_where   text[] := '{}'::text[];
    v_label   text;
    v_context text := CASE WHEN p_check THEN 'NULL::uuid, NULL::jsonb'
                           ELSE 'pgh_fn.pgh_ctx_id, pgh_fn.pgh_ctx' END;
    v_moved   text := 'NULL, NULL';
    v_key     name[] := history_track._key_columns(p_table);
    v_tracked text := CASE p_operation WHEN 'truncate' THEN 'delete' ELSE p_operation END;
BEGIN
    SELECT * INTO STRICT v_tracker FROM history_track.tracker AS t
     WHERE t.table_name = p_table AND t.label = p_label;

    -- The mirrored columns the event table has, and how each is stored.
    v_snap := CASE p_operation WHEN 'insert' THEN 'pgh_new'
                               WHEN 'update' THEN 'pgh_' || COALESCE(v_tracker.snapshot, 'new')
                               ELSE 'pgh_old' END;
    SELECT * INTO v_cols FROM history_track._recorded_lists(p_table, v_snap);

    IF p_operation = 'insert' THEN
        v_from := 'pgh_new_rows AS pgh_new';
    ELSIF p_operation IN ('delete', 'truncate') THEN
        v_from := CASE WHEN p_operation <> 'truncate' OR p_check THEN 'pgh_old_rows AS pgh_old'
                       ELSE format('ONLY %s AS pgh_old', history_track._qualified(COALESCE(p_relation, p_table))) END;
    ELSIF p_single THEN
        v_from := 'pgh_old_rows AS pgh_old, pgh_new_rows AS pgh_new';
    ELSE
        -- (ROWS frame: row_number() needs no peers, so the window streams
        -- instead of holding every row; PostgreSQL 16 does this by itself.)
        v_from := E'(SELECT pg_catalog.row_number() OVER (ROWS UNBOUNDED PRECEDING) AS pgh_rn, * FROM pgh_old_rows) AS pgh_old'
               || E'\n      JOIN (SELECT pg_catalog.row_number() OVER (ROWS UNBOUNDED PRECEDING) AS pgh_rn, * FROM pgh_new_rows) AS pgh_new'
               || E'\n        ON pgh_old.pgh_rn = pgh_new.pgh_rn';
    END IF;

    IF p_operation = 'update' THEN
        -- An update is recorded only when a watched column really changed
        -- (_changed_sql). A changed key is always a change: replay depends on it.
        v_changed := COALESCE(v_tracker.changed,
                              v_cols.names || ARRAY(SELECT k FROM unnest(v_key) AS k WHERE k <> ALL (v_cols.names)));
        -- (A scalar subquery is drawn once per statement, below its events;
        -- for one row, _statement_id() draws it for the row, only if its key
        -- changed, right after the event's pgh_id: readers bound the old
        -- key's events by it, and none can be written between the two, the
        -- row being locked.)
        v_moved := format(
            E'CASE WHEN %1$s THEN %2$s END,\n'
            '           CASE WHEN %1$s THEN %3$s END',
            history_track._changed_sql(p_table, v_key),
            history_track._obj_id_sql(p_table, 'pgh_old'),
            format(CASE WHEN p_single THEN 'history_track._statement_id(%L::pg_catalog.regclass)'
                        ELSE '(SELECT pg_catalog.nextval(%L::pg_catalog.regclass))' END,
                   pg_get_serial_sequence(history_track._qualified(v_table.event_table), 'pgh_id')));
        v_where := v_where || format('(%s)', history_track._changed_sql(p_table, v_changed));
    END IF;

    IF v_tracker.condition IS NOT NULL THEN
        v_where := v_where || format('%s(%s, %s)', v_tracker.condition::oid::regproc,
            CASE WHEN p_operation = 'insert'
                 THEN format('NULL::%s', (SELECT p.proargtypes[0]::regtype FROM pg_proc AS p WHERE p.oid = v_tracker.condition))
                 ELSE history_track._condition_row_sql(p_table, v_tracker.condition, 'pgh_old') END,
            CASE WHEN p_operation IN ('delete', 'truncate')
                 THEN format('NULL::%s', (SELECT p.proargtypes[0]::regtype FROM pg_proc AS p WHERE p.oid = v_tracker.condition))
                 ELSE history_track._condition_row_sql(p_table, v_tracker.condition, 'pgh_new') END);
    END IF;

    -- The default trackers' events are labeled 'revert' while revert_row()
    -- or revert_table() writes (see _context()).
    v_label := CASE WHEN v_tracker.label <> v_tracked OR p_check THEN quote_literal(v_tracker.label)
                    ELSE format('COALESCE(pgh_fn.pgh_ctx_label, %L)', v_tracker.label) END;

    RETURN format(
        E'INSERT INTO %s\n'
        '        (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context,\n'
        '         pgh_old_obj_id, pgh_statement_id%s)\n'
        '    SELECT pg_catalog.now(), %s, %L, %s, %s,\n'
        '           %s%s\n'
        '      FROM %s%s',
        history_track._qualified(v_table.event_table),
        COALESCE(v_cols.targets, ''),
        v_label,
        upper(p_operation),
        history_track._obj_id_sql(p_table, v_snap),
        v_context,
        v_moved,
        COALESCE(v_cols.values, ''),
        v_from,
        CASE WHEN cardinality(v_where) > 0
             THEN E'\n     WHERE ' || array_to_string(v_where, E'\n       AND ') ELSE '' END);
END
$$;

-- (Re)write the trigger functions and triggers of p_table from the catalog:
-- for each operation, the statements of its trackers (each checked first),
-- the function that runs them, and a statement trigger on every relation of
-- the table's tree; an operation no tracker fires on loses both.
CREATE FUNCTION history_track._generate(p_table regclass) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning  -- no "does not exist, skipping" notices
AS $$
DECLARE
    v_table     history_track.tracked_table := history_track._tracked(p_table);
    v_operation text;
    v_labels    text[];
    v_body      text;
    v_function  text;
    v_trigger   name;
    v_relations regclass[] := history_track._relations(p_table);
    v_partitioned boolean := (SELECT c.relkind = 'p' FROM pg_class AS c WHERE c.oid = p_table);
BEGIN
    PERFORM history_track._record_partition_moves(p_table, v_table, v_relations);

    -- Empty stand-ins for the transition tables, against which every generated
    -- statement is executed once (_trigger_statements).
    IF to_regclass('pg_temp.pgh_old_rows') IS NOT NULL OR to_regclass('pg_temp.pgh_new_rows') IS NOT NULL THEN
        RAISE EXCEPTION 'this session has a temporary table named pgh_old_rows or pgh_new_rows'
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Drop it, or track the table from another session.';
    END IF;
    EXECUTE format('CREATE TEMPORARY TABLE pgh_old_rows (LIKE %s)', history_track._qualified(p_table));
    EXECUTE format('CREATE TEMPORARY TABLE pgh_new_rows (LIKE %s)', history_track._qualified(p_table));

    -- TRUNCATE runs the delete trackers, BEFORE the rows are gone: a truncated
    -- table's rows are recorded like deleted ones (pgh_operation TRUNCATE).
    FOREACH v_operation IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        v_function := history_track._trigger_function(v_table.table_id, v_operation);
        v_trigger := ('history_track_' || v_operation)::name;
        PERFORM history_track._assert_trigger_name_free(v_relations, v_trigger, v_function);

        -- Labeled trackers in label order, then the default tracker: so a
        -- labeled event comes before its statement's default event, and its
        -- diff (history_events) is against the row as it was before.
        SELECT array_agg(t.label ORDER BY t.label = o.tracked, t.label) INTO v_labels
          FROM history_track.tracker AS t,
               (SELECT CASE v_operation WHEN 'truncate' THEN 'delete' ELSE v_operation END AS tracked) AS o
         WHERE t.table_name = p_table AND o.tracked = ANY (t.operations);
        IF v_labels IS NULL THEN
            PERFORM history_track._drop_triggers(v_function, NULL);
            EXECUTE format('DROP FUNCTION IF EXISTS %s()', v_function);
            CONTINUE;
        END IF;

        v_body := history_track._trigger_statements(p_table, v_operation, v_labels, v_relations, v_partitioned);
        EXECUTE history_track._trigger_function_sql(p_table, v_operation, v_function, v_body, v_partitioned);
        EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', v_function);
        EXECUTE format('COMMENT ON FUNCTION %s() IS %L', v_function,
                       format('history_track: records %s events of %s; generated, do not edit',
                              v_operation, history_track._qualified(p_table)));
        PERFORM history_track._create_triggers(v_relations, v_trigger, v_operation, v_function);
        -- Relations that left the tree (a detached partition) are no longer recorded.
        PERFORM history_track._drop_triggers(v_function, v_relations);
    END LOOP;
    DROP TABLE pg_temp.pgh_old_rows, pg_temp.pgh_new_rows;
    DELETE FROM history_track.tracked_relation AS r WHERE r.table_name = p_table;
    INSERT INTO history_track.tracked_relation (relation, table_name)
    SELECT r, p_table FROM unnest(v_relations) AS r
    WHERE EXISTS (SELECT FROM history_track.tracker AS k WHERE k.table_name = p_table);
    PERFORM history_track._protect_event_table(v_table.event_table);
    PERFORM history_track._assert_triggers(p_table);
END
$$;

-- A trigger of ours is recognised by its name and the function it calls: a
-- trigger of that name calling anything else is the user's, and stays.
CREATE FUNCTION history_track._assert_trigger_name_free(p_relations regclass[], p_trigger name, p_function text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_existing record;
BEGIN
    SELECT tg.tgrelid::regclass AS rel, tg.tgfoid::regprocedure AS fn INTO v_existing
      FROM pg_trigger AS tg
     WHERE tg.tgrelid = ANY (p_relations) AND tg.tgname = p_trigger
       AND tg.tgfoid::regprocedure::text <> (p_function || '()')
     ORDER BY array_position(p_relations, tg.tgrelid::regclass)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'table % already has a trigger named "%"', v_existing.rel, p_trigger
            USING ERRCODE = 'duplicate_object',
                  DETAIL = format('It calls %s, not history_track''s generated function.', v_existing.fn),
                  HINT = 'Rename that trigger (ALTER TRIGGER ... RENAME TO ...), then track the table again.';
    END IF;
END
$$;

-- The body of the trigger function of one operation: the statement of each
-- tracker (p_labels, in order), each executed once against the empty
-- stand-ins for the transition tables first, so any mistake is reported here,
-- not at the application's next write. An update's body has two variants of
-- each statement (_update_body_sql).
CREATE FUNCTION history_track._trigger_statements(p_table regclass, p_operation text, p_labels text[],
                                                  p_relations regclass[], p_partitioned boolean) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_label   text;
    v_stmt    text;
    v_body    text := '';
    v_single  text := '';
    v_state   text;
    v_message text;
    v_detail  text;
BEGIN
    FOREACH v_label IN ARRAY p_labels LOOP
        BEGIN
            EXECUTE history_track._tracker_sql(p_table, v_label, p_operation, true);
            IF p_operation = 'update' THEN
                EXECUTE history_track._tracker_sql(p_table, v_label, p_operation, true, NULL, true);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                                    v_detail = PG_EXCEPTION_DETAIL;
            RAISE EXCEPTION 'tracker "%" on table % cannot record % events: %', v_label, p_table, p_operation, v_message
                USING ERRCODE = v_state,
                      DETAIL = COALESCE(NULLIF(v_detail, ''), 'The generated statement failed when checked.'),
                      HINT = 'Check the tracker''s condition and options; history_trackers shows them.';
        END;
        v_stmt := CASE WHEN p_operation = 'truncate' AND p_partitioned
                       THEN history_track._truncate_dispatch_sql(p_table, v_label, p_relations)
                       ELSE history_track._tracker_sql(p_table, v_label, p_operation) END;
        -- Citus (45_citus.sql): on a distributed table, the statement as each shard runs it.
        v_stmt := history_track._citus_statement(p_table, p_operation, v_stmt);
        IF v_stmt IS NOT NULL THEN    -- NULL: no partition holds rows yet
            v_body := v_body || '    ' || v_stmt || E';\n';
        END IF;
        IF p_operation = 'update' THEN
            v_single := v_single || '    '
                        || history_track._citus_statement(p_table, p_operation,   -- Citus (45_citus.sql), as above
                               history_track._tracker_sql(p_table, v_label, p_operation, false, NULL, true)) || E';\n';
        END IF;
    END LOOP;
    RETURN CASE WHEN p_operation = 'update' THEN history_track._update_body_sql(v_single, v_body) ELSE v_body END;
END
$$;

-- An update's statements, chosen by the number of rows it changed. One row
-- (the single-row write of an application, most updates) is paired without a
-- plan to speak of. Many are paired by a join on their position (a merge
-- join of the two sorted sides or a hash join, as the planner finds cheaper),
-- planned with nested loops forbidden: PL/pgSQL plans a statement once per
-- session, sized for the transition tables of its first calls, and a nested
-- loop planned for two rows would make a later million-row update quadratic.
-- work_mem is at least 64MB there, so the join's sorts or hash table stay in
-- memory for a few hundred thousand rows (with 4MB a 200k-row update spills
-- to disk: ~15% slower), and no JIT, whose compile would follow the first
-- call's size anyway. (Zipping two arrays of the rows pairs 200k rows about
-- 0.5 s faster, but an array holds at most 1 GB, in memory, with every
-- TOASTed value inlined: a large update of wide rows would fail.) The
-- settings are the transaction's (set_config(..., true)) and are put back
-- right after; an error rolls them back with everything else.
CREATE FUNCTION history_track._update_body_sql(p_single text, p_many text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT E'    PERFORM FROM pgh_new_rows OFFSET 1 LIMIT 1;\n'
            '    IF NOT FOUND THEN\n'
        || '    ' || replace(rtrim(p_single, E'\n'), E'\n', E'\n    ') || E'\n'
        || E'    ELSE\n'
            '        pgh_fn.pgh_settings := ARRAY[pg_catalog.current_setting(''enable_nestloop''),\n'
            '                                     pg_catalog.current_setting(''jit''),\n'
            '                                     pg_catalog.current_setting(''work_mem'')];\n'
            '        PERFORM pg_catalog.set_config(''enable_nestloop'', ''off'', true),\n'
            '                pg_catalog.set_config(''jit'', ''off'', true),\n'
            '                pg_catalog.set_config(''work_mem'', GREATEST(pg_catalog.pg_size_bytes(pgh_fn.pgh_settings[3]),\n'
            '                                                            67108864) / 1024 || ''kB'', true);\n'
        || '    ' || replace(rtrim(p_many, E'\n'), E'\n', E'\n    ') || E'\n'
        || E'        PERFORM pg_catalog.set_config(''enable_nestloop'', pgh_fn.pgh_settings[1], true),\n'
            '                pg_catalog.set_config(''jit'', pgh_fn.pgh_settings[2], true),\n'
            '                pg_catalog.set_config(''work_mem'', pgh_fn.pgh_settings[3], true);\n'
            '    END IF;\n'
$$;

-- TRUNCATE of a partitioned tree: one function for every relation of the
-- tree, each reading the relation being truncated, chosen by TG_RELID among
-- the relations named here (written again whenever the tree changes). NULL
-- when no relation of the tree holds rows of its own.
CREATE FUNCTION history_track._truncate_dispatch_sql(p_table regclass, p_label text, p_relations regclass[]) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (
        SELECT string_agg(format(E'%s TG_RELID = %L::pg_catalog.regclass THEN\n        %s;',
                                 CASE WHEN r.n = 1 THEN 'IF' ELSE 'ELSIF' END,
                                 history_track._qualified(r.rel),
                                 CASE WHEN r.relkind = 'p' THEN 'NULL'    -- holds no rows of its own
                                      ELSE history_track._tracker_sql(p_table, p_label, 'truncate', false, r.rel) END),
                          E'\n    ' ORDER BY r.n)
               || E'\n    ELSE\n        RAISE EXCEPTION ''history_track: relation % is not in the tree of %'','
               || ' TG_RELID::pg_catalog.regclass, ' || quote_literal(history_track._qualified(p_table))
               || E'\n            USING HINT = ''Run ALTER TABLE on the partitioned table to have its triggers'
               || E' written again.'';\n    END IF'
          FROM (SELECT u.rel, c.relkind, row_number() OVER (ORDER BY u.ord) AS n
                  FROM unnest(p_relations) WITH ORDINALITY AS u(rel, ord)
                  JOIN pg_class AS c ON c.oid = u.rel) AS r);
END
$$;

-- The CREATE FUNCTION statement of the trigger function of one operation,
-- around the statements of its trackers (p_body). It sets nothing but what it
-- must: every SET clause costs each call (a single-row update paid more for
-- three planner settings than for its event), so an update's planner settings
-- are set where they are needed (_update_body_sql).
-- TRUNCATE reads the table (constraint_exclusion off: PostgreSQL
-- would otherwise simplify its CHECK constraints while planning, and
-- run a function of the owner's they call; see _untrusted_code()), not
-- JIT-compiled.
-- The text form of a composite or range type of the table owner's
-- (see _stored_type), a composite key's JSON and a condition's result must
-- not depend on the writer's settings (_output_settings).
CREATE FUNCTION history_track._trigger_function_sql(p_table regclass, p_operation text, p_function text, p_body text,
                                                    p_partitioned boolean) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN format(
        E'CREATE OR REPLACE FUNCTION %s() RETURNS trigger\n'
        'LANGUAGE plpgsql SECURITY DEFINER\n'
        'SET search_path = pg_catalog, pg_temp\n'
        '%s%s'
        'AS %L',
        p_function,
        CASE WHEN p_operation = 'truncate' THEN E'SET jit = off\nSET constraint_exclusion = off\n' ELSE '' END,
        CASE WHEN EXISTS (SELECT FROM history_track.tracker AS k
                           WHERE k.table_name = p_table AND history_track._condition_varies(k.condition))
             THEN history_track._stable_output_settings(true)
             WHEN history_track._text_forms_vary(p_table) THEN history_track._stable_output_settings(false)
             ELSE '' END,
        E'#variable_conflict use_column\n'
        || format(E'-- Generated by history_track for %s (%s); do not edit: the catalog is the source.\n',
                  history_track._qualified(p_table), p_operation)
        || E'<<pgh_fn>>\n'
        || E'DECLARE\n'
        || E'    pgh_ctx_id    uuid;\n'
        || E'    pgh_ctx       jsonb;\n'
        || E'    pgh_ctx_label text;\n'
        || CASE WHEN p_operation = 'update' THEN E'    pgh_settings  text[];\n' ELSE '' END
        || E'BEGIN\n'
        || CASE p_operation
           WHEN 'truncate' THEN
               -- TRUNCATE is not MVCC-safe: the rows it removes are the
               -- committed ones, which a snapshot older than the statement
               -- does not all see.
               E'    IF pg_catalog.current_setting(''transaction_isolation'') <> ''read committed'' THEN\n'
               || format(E'        RAISE EXCEPTION ''TRUNCATE of tracked table %% needs READ COMMITTED isolation'', %L\n',
                         p_table::text)
               || E'            USING ERRCODE = ''invalid_transaction_state'',\n'
               || E'                  DETAIL = ''Its history records the rows TRUNCATE removes, which a snapshot taken'
               || E' earlier in the transaction does not all see.'',\n'
               || E'                  HINT = ''TRUNCATE in a READ COMMITTED transaction, or DELETE.'';\n'
               || E'    END IF;\n'
               -- (It reads the table as the extension's owner: checked as it
               -- is read, see _assert_trusted_code.)
               || format(E'    PERFORM history_track._assert_trusted_code(pg_catalog.to_regclass(%L));\n',
                         history_track._qualified(p_table))
           WHEN 'update' THEN
               CASE WHEN p_partitioned THEN
                   -- A row an UPDATE moves to another partition is inserted
                   -- there; a BEFORE INSERT trigger of that partition that
                   -- returns NULL drops it, and its old version has no new one.
                   E'    IF (SELECT pg_catalog.count(*) FROM pgh_old_rows) <> (SELECT pg_catalog.count(*) FROM pgh_new_rows) THEN\n'
                   || format(E'        RAISE EXCEPTION ''an UPDATE of %% lost rows it moved to another partition'', %L\n',
                             p_table::text)
                   || E'            USING ERRCODE = ''triggered_action_exception'',\n'
                   || E'                  DETAIL = ''A BEFORE INSERT trigger of the partition they moved to returned NULL:'
                   || E' their history cannot be told.'',\n'
                   || E'                  HINT = ''DELETE those rows instead, or have the trigger raise an error.'';\n'
                   || E'    END IF;\n'
               ELSE '' END
           ELSE '' END
        -- A deferred primary key is checked now (_immediate_keys_sql).
        || CASE WHEN p_operation IN ('insert', 'update') AND history_track._immediate_keys_sql(p_table) IS NOT NULL THEN
               E'    BEGIN\n'
               || format(E'        %s;\n', history_track._immediate_keys_sql(p_table))
               || E'    EXCEPTION WHEN unique_violation THEN\n'
               || format(E'        RAISE EXCEPTION ''two rows of tracked table %% would share a key: %%'', %L, SQLERRM\n',
                         p_table::text)
               || E'            USING ERRCODE = ''unique_violation'',\n'
               || E'                  DETAIL = ''history_track tells rows apart by their primary key: it checks a deferred key'
               || E' at the end of each statement that writes the table.'',\n'
               || E'                  HINT = ''Change keys so that each statement leaves them unique (one statement may swap'
               || E' them).'';\n'
               || E'    END;\n'
           ELSE '' END
        -- The context (30_context.sql), once per statement; read only when
        -- one is set, as three expressions PostgreSQL inlines (a query would
        -- start an executor every time; a PL/pgSQL function returning a
        -- record cost 18k instructions more).
        || E'    IF history_track._context_is_set() THEN\n'
        || E'        pgh_fn.pgh_ctx_label := history_track._context_label();\n'
        || E'        pgh_fn.pgh_ctx := history_track._context_json();\n'
        || E'        pgh_fn.pgh_ctx_id := CASE WHEN pgh_fn.pgh_ctx IS NOT NULL THEN history_track._context_id() END;\n'
        || E'    END IF;\n'
        || p_body || E'    RETURN NULL;\nEND\n');
END
$$;

-- A statement trigger calling p_function on every relation of the tree that
-- has none yet.
CREATE FUNCTION history_track._create_triggers(p_relations regclass[], p_trigger name, p_operation text, p_function text)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_relation regclass;
BEGIN
    FOREACH v_relation IN ARRAY p_relations LOOP
        IF NOT EXISTS (SELECT FROM pg_trigger AS tg WHERE tg.tgrelid = v_relation AND tg.tgname = p_trigger) THEN
            EXECUTE format(
                'CREATE TRIGGER %I %s %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                p_trigger,
                CASE p_operation WHEN 'truncate' THEN 'BEFORE' ELSE 'AFTER' END,
                upper(p_operation), history_track._qualified(v_relation),
                CASE p_operation WHEN 'insert' THEN 'REFERENCING NEW TABLE AS pgh_new_rows'
                                 WHEN 'delete' THEN 'REFERENCING OLD TABLE AS pgh_old_rows'
                                 WHEN 'update' THEN 'REFERENCING OLD TABLE AS pgh_old_rows NEW TABLE AS pgh_new_rows'
                                 ELSE '' END,
                p_function);
        END IF;
    END LOOP;
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
        SELECT tg.tgname, tg.tgrelid::regclass AS rel FROM pg_trigger AS tg
         WHERE tg.tgfoid = (SELECT to_regprocedure(p_function || '()'))::oid
           AND NOT (tg.tgrelid::regclass = ANY (COALESCE(p_keep, '{}')))
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, history_track._qualified(v_trigger.rel));
    END LOOP;
END
$$;

-- Remove every generated trigger, trigger function and condition function
-- of a table (and its row type, with p_row_type).
CREATE FUNCTION history_track._drop_generated(p_table_id integer, p_row_type boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning  -- no "does not exist, skipping" notices
AS $$
DECLARE
    v_operation text;
    v_function  text;
BEGIN
    FOREACH v_operation IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        v_function := history_track._trigger_function(p_table_id, v_operation);
        PERFORM history_track._drop_triggers(v_function, NULL);
        EXECUTE format('DROP FUNCTION IF EXISTS %s()', v_function);
    END LOOP;
    IF p_row_type THEN
        -- The condition functions (they take the row type), then the type,
        -- each by name: never CASCADE, which would drop, with the extension
        -- owner's privileges, whatever else anyone made depend on them.
        FOR v_function IN
            SELECT p.oid::regprocedure::text FROM pg_proc AS p
             WHERE p.pronamespace = 'history_track'::regnamespace
               AND p.proname ~ ('^_t' || p_table_id || '_c[0-9]+$')
        LOOP
            EXECUTE format('DROP FUNCTION %s', v_function);
        END LOOP;
        EXECUTE format('DROP TYPE IF EXISTS %s', history_track._generated_name(p_table_id, 'row'));
    END IF;
END
$$;
