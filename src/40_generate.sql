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

-- The INSERT ... SELECT that one tracker runs for one operation. It reads the
-- context from the trigger function's variables pgh_ctx_id, pgh_ctx and
-- pgh_ctx_label (read once per statement); with p_check, the variant executed once at track_table time,
-- against empty stand-ins, with NULL context. 'truncate' is the delete
-- trackers' statement reading the whole table before it is emptied; with
-- p_dynamic, the text of that statement for a partitioned table's tree, run by
-- EXECUTE with the truncated relation in place of pgh_truncated_table and the
-- context as $1, $2 (label $3).
--
-- Updates that change the primary key also store the old key
-- (pgh_old_obj_id) and pgh_statement_id, a value drawn once per statement
-- from pgh_id's own sequence, so below every event the statement writes: it
-- tells replay which key changes happened in the same statement (a swap of
-- two keys is not a delete of either) and where a moved row's history
-- continues under its old key. Both are NULL on every other event.
CREATE FUNCTION history_track._tracker_sql(p_table regclass, p_label text, p_operation text,
                                           p_check boolean DEFAULT false, p_dynamic boolean DEFAULT false)
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
    v_label   text;
    v_context text := CASE WHEN p_check THEN 'NULL::uuid, NULL::jsonb'
                           WHEN p_dynamic THEN '$1, $2'
                           ELSE 'pgh_ctx_id, pgh_ctx' END;
    v_moved   text := 'NULL, NULL';
    v_key     name[] := history_track._key_columns(p_table);
    v_tracked text := CASE p_operation WHEN 'truncate' THEN 'delete' ELSE p_operation END;
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
        v_from := CASE WHEN p_operation OPERATOR(pg_catalog.<>) 'truncate' OR p_check THEN 'pgh_old_rows AS old'
                       WHEN p_dynamic THEN 'ONLY pgh_truncated_table AS old'
                       ELSE pg_catalog.format('ONLY %s AS old', history_track._qualified(p_table)) END;
        IF v_tracker.condition IS NOT NULL THEN
            v_from := v_from || pg_catalog.format(E'\n      CROSS JOIN (SELECT (NULL::%s).*) AS new',
                                                  history_track._qualified(p_table));
        END IF;
    ELSE
        -- (ROWS frame: row_number() needs no peers, so the window streams
        -- instead of holding every row; PostgreSQL 16 does this by itself.)
        v_from := E'(SELECT pg_catalog.row_number() OVER (ROWS UNBOUNDED PRECEDING) AS pgh_rn, * FROM pgh_old_rows) AS old'
               || E'\n      JOIN (SELECT pg_catalog.row_number() OVER (ROWS UNBOUNDED PRECEDING) AS pgh_rn, * FROM pgh_new_rows) AS new'
               || E'\n        ON old.pgh_rn OPERATOR(pg_catalog.=) new.pgh_rn';
        -- An update is recorded only when a watched column really changed:
        -- compared by binary image, so no type's equality operator runs here,
        -- every type compares (json, point, ...), and 1.0 -> 1.00 is a change.
        -- A changed key is always a change: replay depends on it.
        v_changed := COALESCE(v_tracker.changed,
                              v_cols OPERATOR(pg_catalog.||)
                              ARRAY(SELECT k FROM pg_catalog.unnest(v_key) AS k
                                     WHERE k OPERATOR(pg_catalog.<>) ALL (v_cols)));
        v_moved := pg_catalog.format(
            E'CASE WHEN %1$s THEN %2$s END,\n'
            '           CASE WHEN %1$s THEN (SELECT pg_catalog.nextval(%3$L::regclass)) END',
            pg_catalog.format('pg_catalog.record_image_ne(ROW(%s), ROW(%s))',
                (SELECT pg_catalog.string_agg(pg_catalog.format('old.%I', c), ', ') FROM pg_catalog.unnest(v_key) AS c),
                (SELECT pg_catalog.string_agg(pg_catalog.format('new.%I', c), ', ') FROM pg_catalog.unnest(v_key) AS c)),
            history_track._obj_id_sql(p_table, 'old'),
            pg_catalog.pg_get_serial_sequence(history_track._qualified(v_table.event_table), 'pgh_id'));
        v_where := v_where || pg_catalog.format('pg_catalog.record_image_ne(ROW(%s), ROW(%s))',
            (SELECT pg_catalog.string_agg(pg_catalog.format('old.%I', c), ', ') FROM pg_catalog.unnest(v_changed) AS c),
            (SELECT pg_catalog.string_agg(pg_catalog.format('new.%I', c), ', ') FROM pg_catalog.unnest(v_changed) AS c));
    END IF;

    IF v_tracker.condition IS NOT NULL THEN
        -- Checked by _check_condition() to be exactly one boolean expression.
        v_where := v_where || (E'(\n' || v_tracker.condition || E'\n)');
    END IF;

    -- The default trackers' events are labeled 'revert' while revert_row()
    -- or revert_table() writes (see _context()).
    v_label := CASE WHEN v_tracker.label OPERATOR(pg_catalog.<>) v_tracked OR p_check
                    THEN pg_catalog.quote_literal(v_tracker.label)
                    WHEN p_dynamic THEN pg_catalog.format('COALESCE($3, %L)', v_tracker.label)
                    ELSE pg_catalog.format('COALESCE(pgh_ctx_label, %L)', v_tracker.label) END;

    RETURN pg_catalog.format(
        E'INSERT INTO %s\n'
        '        (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context,\n'
        '         pgh_old_obj_id, pgh_statement_id%s)\n'
        '    SELECT pg_catalog.now(), %s, %L, %s, %s,\n'
        '           %s%s\n'
        '      FROM %s%s',
        history_track._qualified(v_table.event_table),
        (SELECT pg_catalog.string_agg(pg_catalog.format(', %I', c), '') FROM pg_catalog.unnest(v_cols) AS c),
        v_label,
        pg_catalog.upper(p_operation),
        history_track._obj_id_sql(p_table, v_snap),
        v_context,
        v_moved,
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
    v_relations regclass[] := history_track._relations(p_table);
    v_partitioned boolean := (SELECT c.relkind OPERATOR(pg_catalog.=) 'p' FROM pg_catalog.pg_class AS c
                               WHERE c.oid OPERATOR(pg_catalog.=) p_table);
    v_relation  regclass;
    v_joined    regclass[];
    v_left      regclass[];
    v_replayed  boolean;
BEGIN
    SELECT * INTO STRICT v_table FROM history_track.tracked_table AS t
     WHERE t.table_name OPERATOR(pg_catalog.=) p_table;

    -- Partitions that joined or left the tree since the triggers were last
    -- written (ATTACH / DETACH PARTITION): their rows enter or leave the
    -- table without DML, so they are recorded as a baseline (below).
    v_replayed := history_track._has_default_trackers(p_table);
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger AS tg
                WHERE tg.tgrelid OPERATOR(pg_catalog.=) p_table AND tg.tgname OPERATOR(pg_catalog.=) 'history_track_insert') THEN
        v_joined := ARRAY(SELECT r FROM pg_catalog.unnest(v_relations) AS r
                           WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS tg
                                              WHERE tg.tgrelid OPERATOR(pg_catalog.=) r
                                                AND tg.tgname OPERATOR(pg_catalog.=) 'history_track_insert'));
        v_left := ARRAY(SELECT DISTINCT tg.tgrelid::regclass FROM pg_catalog.pg_trigger AS tg
                         WHERE tg.tgname OPERATOR(pg_catalog.=) 'history_track_insert'
                           AND tg.tgfoid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure(
                                   pg_catalog.format('history_track.%I()', pg_catalog.format('_t%s_insert', v_table.table_id)))::oid
                           AND NOT tg.tgrelid::regclass OPERATOR(pg_catalog.=) ANY (v_relations));
        IF v_replayed THEN
            FOREACH v_relation IN ARRAY v_left LOOP
                PERFORM history_track._record_rows(p_table, 'DELETE',
                            pg_catalog.format('ONLY %s AS t', history_track._qualified(v_relation)));
            END LOOP;
            FOREACH v_relation IN ARRAY v_joined LOOP
                PERFORM history_track._record_rows(p_table, 'BASELINE',
                            pg_catalog.format('ONLY %s AS t', history_track._qualified(v_relation)));
            END LOOP;
        END IF;
    END IF;

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

        FOREACH v_relation IN ARRAY v_relations LOOP
            SELECT tg.tgfoid::regprocedure INTO v_existing
              FROM pg_catalog.pg_trigger AS tg
             WHERE tg.tgrelid OPERATOR(pg_catalog.=) v_relation AND tg.tgname OPERATOR(pg_catalog.=) v_trigger;
            IF v_existing IS NOT NULL AND v_existing::text OPERATOR(pg_catalog.<>) (v_function || '()') THEN
                RAISE EXCEPTION 'table % already has a trigger named "%"', v_relation, v_trigger
                    USING ERRCODE = 'duplicate_object',
                          DETAIL = pg_catalog.format('It calls %s, not history_track''s generated function.', v_existing),
                          HINT = 'Rename that trigger (ALTER TRIGGER ... RENAME TO ...), then track the table again.';
            END IF;
        END LOOP;

        -- Labeled trackers in label order, then the default tracker: so a
        -- labeled event comes before its statement's default event, and its
        -- diff (history_events) is against the row as it was before.
        SELECT pg_catalog.array_agg(t.label ORDER BY t.label OPERATOR(pg_catalog.=) v_tracked, t.label)
          INTO v_labels
          FROM history_track.tracker AS t
         WHERE t.table_name OPERATOR(pg_catalog.=) p_table
           AND v_tracked OPERATOR(pg_catalog.=) ANY (t.operations);

        IF v_labels IS NULL THEN
            PERFORM history_track._drop_triggers(v_function, NULL);
            EXECUTE pg_catalog.format('DROP FUNCTION IF EXISTS %s()', v_function);
            CONTINUE;
        END IF;

        v_body := '';
        FOREACH v_label IN ARRAY v_labels LOOP
            v_stmt := history_track._tracker_sql(p_table, v_label, v_operation);
            v_check := history_track._tracker_sql(p_table, v_label, v_operation, true);
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
            IF v_operation OPERATOR(pg_catalog.=) 'truncate' AND v_partitioned THEN
                -- One function for every relation of the tree: it reads the
                -- relation being truncated, named at run time.
                v_stmt := pg_catalog.format(
                    E'EXECUTE pg_catalog.replace(%L,\n        ''pgh_truncated_table'', TG_RELID::pg_catalog.regclass::pg_catalog.text)\n'
                    '        USING pgh_ctx_id, pgh_ctx, pgh_ctx_label',
                    history_track._tracker_sql(p_table, v_label, v_operation, false, true));
            END IF;
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
        -- work_mem 64MB for updates: the pair join's hash table holds the old
        -- rows; with the default 4MB a 200k-row update spills it to disk
        -- (measured: the whole update ~15% slower). Memory is only taken as
        -- the rows need it. (A session that set work_mem higher gets 64MB
        -- inside this function.)
        EXECUTE pg_catalog.format(
            E'CREATE OR REPLACE FUNCTION %s() RETURNS trigger\n'
            'LANGUAGE plpgsql SECURITY DEFINER\n'
            'SET search_path = pg_catalog, pg_temp\n'
            'SET jit = off\n'
            '%s'
            'AS %L',
            v_function,
            CASE WHEN v_operation OPERATOR(pg_catalog.=) 'update' THEN E'SET enable_nestloop = off\nSET work_mem = ''64MB''\n' ELSE '' END,
            E'#variable_conflict use_column\n'
            || pg_catalog.format(E'-- Generated by history_track for %s (%s); do not edit: the catalog is the source.\n',
                                 history_track._qualified(p_table), v_operation)
            || E'DECLARE\n'
            || E'    pgh_ctx_id    uuid;\n'
            || E'    pgh_ctx       jsonb;\n'
            || E'    pgh_ctx_label text;\n'
            || E'BEGIN\n'
            -- The context, once per statement; the full read only when one is set.
            || E'    IF history_track._context_is_set() THEN\n'
            || E'        SELECT c.context_id, c.context, c.label INTO pgh_ctx_id, pgh_ctx, pgh_ctx_label\n'
            || E'          FROM history_track._context() AS c;\n'
            || E'    END IF;\n'
            || v_body || E'    RETURN NULL;\nEND\n');
        EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', v_function);
        EXECUTE pg_catalog.format('COMMENT ON FUNCTION %s() IS %L', v_function,
            pg_catalog.format('history_track: records %s events of %s; generated, do not edit',
                              v_operation, history_track._qualified(p_table)));

        FOREACH v_relation IN ARRAY v_relations LOOP
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS tg
                            WHERE tg.tgrelid OPERATOR(pg_catalog.=) v_relation
                              AND tg.tgname OPERATOR(pg_catalog.=) v_trigger) THEN
                EXECUTE pg_catalog.format(
                    'CREATE TRIGGER %I %s %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                    v_trigger,
                    CASE v_operation WHEN 'truncate' THEN 'BEFORE' ELSE 'AFTER' END,
                    pg_catalog.upper(v_operation), history_track._qualified(v_relation),
                    CASE v_operation WHEN 'insert' THEN 'REFERENCING NEW TABLE AS pgh_new_rows'
                                     WHEN 'delete' THEN 'REFERENCING OLD TABLE AS pgh_old_rows'
                                     WHEN 'update' THEN 'REFERENCING OLD TABLE AS pgh_old_rows NEW TABLE AS pgh_new_rows'
                                     ELSE '' END,
                    v_function);
            END IF;
        END LOOP;
        -- Relations that left the tree (a detached partition) are no longer recorded.
        PERFORM history_track._drop_triggers(v_function, v_relations);
    END LOOP;
    DROP TABLE pg_temp.pgh_old_rows, pg_temp.pgh_new_rows;
    PERFORM history_track._protect_event_table(v_table.event_table);
    PERFORM history_track._assert_triggers(p_table);
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
        SELECT tg.tgname, tg.tgrelid::regclass AS rel FROM pg_catalog.pg_trigger AS tg
         WHERE tg.tgfoid OPERATOR(pg_catalog.=) (SELECT pg_catalog.to_regprocedure(p_function || '()'))::oid
           AND NOT (tg.tgrelid::regclass OPERATOR(pg_catalog.=) ANY (COALESCE(p_keep, '{}')))
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', v_trigger.tgname, history_track._qualified(v_trigger.rel));
    END LOOP;
END
$$;

-- Remove every generated trigger and function of a table.
CREATE FUNCTION history_track._drop_generated(p_table_id integer) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning  -- no "does not exist, skipping" notices
AS $$
DECLARE
    v_operation text;
    v_function  text;
BEGIN
    FOREACH v_operation IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        v_function := pg_catalog.format('history_track.%I', pg_catalog.format('_t%s_%s', p_table_id, v_operation));
        PERFORM history_track._drop_triggers(v_function, NULL);
        EXECUTE pg_catalog.format('DROP FUNCTION IF EXISTS %s()', v_function);
    END LOOP;
END
$$;
