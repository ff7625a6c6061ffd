-- Conditions: the one place a tracker's condition is turned into code.
--
-- A condition is text a table owner typed, and the trigger that evaluates it
-- runs with history_track's privileges. So the text never reaches SQL that
-- history_track runs. Instead:
--
-- 1. PostgreSQL parses it, as the caller (_parse_condition() is SECURITY
--    INVOKER, so whatever the text does while parsed -- a literal of the
--    caller's domain runs its CHECK -- happens with the caller's own
--    privileges): into the body of a temporary SQL function over the rows
--    OLD and NEW, whose type is the table's row type (see _row_type()).
-- 2. The parse tree PostgreSQL stored (pg_proc.prosqlbody) is checked
--    against an allowlist (_check_condition_tree()): one boolean expression,
--    no subquery, no relation; only the allowed functions and operators
--    (_condition_allows()); no value of a type whose input or constraints a
--    non-superuser defined.
-- 3. PostgreSQL deparses the checked tree, and the deparsed text becomes the
--    body of the tracker's condition function (history_track._t<id>_c<n>);
--    the new function's tree must equal the checked one.
-- The triggers call that function, which PostgreSQL inlines from its stored
-- tree: nothing is parsed again at run time, so nothing a later CREATE CAST
-- or CREATE OPERATOR does can change what it calls. history_trackers shows
-- the condition as PostgreSQL prints it.
--
-- The row type is history_track._t<id>_row: the table's columns, each of the
-- type history stores it as (see _stored_type()), so a condition sees no
-- value of a type a non-superuser defined, and the type depends on nothing
-- the table's owner can drop.

-- The row type conditions of p_table are written against, created or brought
-- up to date with the table's columns (new columns added). Renamed, dropped
-- and retyped columns are followed by _follow_row_type() in 80_lifecycle.sql.
CREATE FUNCTION history_track._row_type(p_table regclass) RETURNS regtype
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table_id integer := (SELECT t.table_id FROM history_track.tracked_table AS t WHERE t.table_name = p_table);
    v_type     text := history_track._generated_name(v_table_id, 'row');
    v_column   record;
BEGIN
    IF to_regtype(v_type) IS NULL THEN
        EXECUTE format('CREATE TYPE %s AS (%s)', v_type,
                       (SELECT string_agg(format('%I %s', m.attname, m.type_sql), ', ' ORDER BY a.attnum)
                          FROM history_track._mirrored_columns(p_table, NULL, NULL) AS m
                          JOIN pg_attribute AS a ON a.attrelid = p_table AND a.attname = m.attname));
        EXECUTE format('COMMENT ON TYPE %s IS %L', v_type,
                       format('history_track: the rows OLD and NEW of %s in tracker conditions; generated, do not edit',
                              history_track._qualified(p_table)));
    ELSE
        FOR v_column IN
            SELECT m.attname, m.type_sql FROM history_track._mirrored_columns(p_table, NULL, NULL) AS m
             WHERE NOT EXISTS (SELECT FROM pg_attribute AS a
                                WHERE a.attrelid = (SELECT t.typrelid FROM pg_type AS t WHERE t.oid = to_regtype(v_type))
                                  AND a.attname = m.attname AND NOT a.attisdropped)
        LOOP
            EXECUTE format('ALTER TYPE %s ADD ATTRIBUTE %I %s', v_type, v_column.attname, v_column.type_sql);
        END LOOP;
    END IF;
    RETURN to_regtype(v_type);
END
$$;

-- Whether SQL text has a semicolon outside its quotes and comments: a
-- condition is one expression, and nothing may follow it. (Parsing runs as
-- the caller anyway; this keeps the one statement that parses it the only
-- one. The lexing follows PostgreSQL's with standard_conforming_strings on.)
CREATE FUNCTION history_track._has_semicolon(p_text text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_i      integer := 1;
    v_n      integer := length(p_text);
    v_c      text;
    v_depth  integer;
    v_escape boolean;
    v_tag    text;
    v_at     integer;
BEGIN
    WHILE v_i <= v_n LOOP
        v_c := substr(p_text, v_i, 1);
        IF v_c = ';' THEN
            RETURN true;
        ELSIF substr(p_text, v_i, 2) = '--' THEN
            v_at := strpos(substr(p_text, v_i), E'\n');
            EXIT WHEN v_at = 0;
            v_i := v_i + v_at;
        ELSIF substr(p_text, v_i, 2) = '/*' THEN
            v_depth := 1;
            v_i := v_i + 2;
            WHILE v_i <= v_n AND v_depth > 0 LOOP
                IF substr(p_text, v_i, 2) = '/*' THEN
                    v_depth := v_depth + 1;
                    v_i := v_i + 2;
                ELSIF substr(p_text, v_i, 2) = '*/' THEN
                    v_depth := v_depth - 1;
                    v_i := v_i + 2;
                ELSE
                    v_i := v_i + 1;
                END IF;
            END LOOP;
        ELSIF v_c IN ('''', '"') THEN
            -- E'...' strings take backslash escapes.
            v_escape := v_c = '''' AND v_i > 1 AND lower(substr(p_text, v_i - 1, 1)) = 'e'
                        AND (v_i = 2 OR substr(p_text, v_i - 2, 1) !~ '[[:alnum:]_$]');
            v_i := v_i + 1;
            WHILE v_i <= v_n LOOP
                IF v_escape AND substr(p_text, v_i, 1) = '\' THEN
                    v_i := v_i + 2;
                ELSIF substr(p_text, v_i, 1) = v_c THEN
                    IF substr(p_text, v_i + 1, 1) = v_c THEN
                        v_i := v_i + 2;
                    ELSE
                        v_i := v_i + 1;
                        EXIT;
                    END IF;
                ELSE
                    v_i := v_i + 1;
                END IF;
            END LOOP;
        ELSIF v_c = '$' AND (v_i = 1 OR substr(p_text, v_i - 1, 1) !~ '[[:alnum:]_$]')
              AND substr(p_text, v_i) ~ '^\$([A-Za-z_][A-Za-z_0-9]*)?\$' THEN
            v_tag := substring(substr(p_text, v_i) FROM '^(\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$)');
            v_at := strpos(substr(p_text, v_i + length(v_tag)), v_tag);
            EXIT WHEN v_at = 0;
            v_i := v_i + length(v_tag) + v_at - 1 + length(v_tag);
        ELSE
            v_i := v_i + 1;
        END IF;
    END LOOP;
    RETURN false;
END
$$;

-- Step 1: PostgreSQL parses the condition as the caller, into a temporary
-- function over the rows OLD and NEW of type p_row. Returns it.
-- SECURITY INVOKER on purpose: this is the only place a condition's text is
-- handed to PostgreSQL, and it runs with the caller's privileges, like any
-- SQL the caller could type itself.
CREATE FUNCTION history_track._parse_condition(p_table regclass, p_label text, p_row regtype, p_condition text)
RETURNS regprocedure
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET standard_conforming_strings = on
AS $$
DECLARE
    v_probe   text := format('pg_temp.history_track_condition(%1$s, %1$s)', p_row);
    v_state   text;
    v_message text;
BEGIN
    IF btrim(p_condition, E' \t\r\n') = '' THEN
        RAISE EXCEPTION 'condition of tracker "%" on table % is empty', p_label, p_table
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a boolean SQL expression over OLD and NEW, or leave condition out.';
    END IF;
    IF history_track._has_semicolon(p_condition) THEN
        RAISE EXCEPTION 'invalid condition for tracker "%" on table %', p_label, p_table
            USING ERRCODE = 'syntax_error',
                  DETAIL = 'It contains a semicolon: a condition is one expression, and nothing may follow it.',
                  HINT = 'Pass one boolean SQL expression over OLD and NEW; combine tests with AND and OR.';
    END IF;
    IF to_regprocedure(v_probe) IS NOT NULL THEN
        EXECUTE format('DROP FUNCTION %s', v_probe);
    END IF;
    BEGIN
        EXECUTE format(E'CREATE FUNCTION pg_temp.history_track_condition(old %1$s, new %1$s) RETURNS boolean\n'
                       'LANGUAGE sql STABLE RETURN (\n%2$s\n)', p_row, p_condition);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT;
        IF v_state = '42P13' THEN
            -- "return type mismatch": the expression is not boolean.
            v_state := '42804';
            v_message := 'the condition is not a boolean expression';
        END IF;
        RAISE EXCEPTION 'invalid condition for tracker "%" on table %', p_label, p_table
            USING ERRCODE = v_state,
                  DETAIL = v_message,
                  HINT = CASE WHEN v_state = '42501' AND v_message LIKE '%temporary%'
                              THEN 'A condition is parsed into a temporary function as the calling role: grant it TEMPORARY on the '
                                   'database.'
                              ELSE format('A condition is one boolean SQL expression over the rows OLD and NEW, which have the columns %s.',
                                          (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                                             FROM pg_attribute AS a
                                            WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped)) END;
    END;
    RETURN to_regprocedure(v_probe);
END
$$;

-- Whether a condition may call a function: one PostgreSQL itself provides
-- that computes its result from its arguments alone (immutable, built in or
-- an immutable C function a superuser installed, taking no internal
-- arguments), one of the named stable ones below, or one a superuser listed
-- in history_track.condition_function. Nothing that reads a relation, a
-- file, a setting or the catalog; no SQL function of PostgreSQL's that casts
-- a polymorphic argument to text (quote_literal(anyelement), anytextcat: the
-- cast could be one a type's owner defined); no JSON conversion of a
-- polymorphic argument (to_json and the like look up casts to json).
CREATE FUNCTION history_track._condition_allows(p_function oid) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM history_track.condition_function AS f WHERE f.function = p_function)
        OR COALESCE((
           SELECT history_track._superuser_owned('pg_proc', p.oid, p.proowner)
                  AND p.prokind = 'f' AND NOT p.prosecdef AND NOT p.proretset
                  AND p.pronamespace <> 'information_schema'::regnamespace
                  AND NOT EXISTS (SELECT FROM unnest(p.proargtypes::oid[] || p.prorettype) AS t(oid)
                                   WHERE t.oid IN ('internal'::regtype, 'cstring'::regtype))
                  AND (NOT EXISTS (SELECT FROM unnest(p.proargtypes::oid[]) AS t(oid)
                                     JOIN pg_type AS ty ON ty.oid = t.oid WHERE ty.typtype = 'p')
                       OR (p.oid < 16384 AND l.lanname = 'internal'
                           AND (p.provolatile = 'i' OR p.proname IN ('format', 'concat', 'concat_ws', 'array_to_string'))))
                  AND CASE p.provolatile
                      WHEN 'i' THEN l.lanname IN ('internal', 'c') OR (l.lanname = 'sql' AND p.oid < 16384)
                      WHEN 's' THEN p.oid < 16384 AND l.lanname IN ('internal', 'sql')
                                    AND (p.proname IN ('now', 'statement_timestamp', 'transaction_timestamp',
                                                       'date_part', 'extract', 'date_trunc', 'to_char', 'to_date',
                                                       'to_number', 'to_timestamp', 'timezone', 'make_timestamptz',
                                                       'age', 'date', 'time', 'timetz', 'timestamp', 'timestamptz',
                                                       'in_range', 'overlaps', 'interval_pl_timestamptz',
                                                       'timestamptz_pl_interval', 'timestamptz_mi_interval',
                                                       'format', 'concat', 'concat_ws', 'array_to_string')
                                         OR p.proname ~ ('^(date|timestamp|timestamptz)_(eq|ne|lt|le|gt|ge|cmp)_'
                                                         '(date|timestamp|timestamptz)$'))
                      ELSE false END
             FROM pg_proc AS p
             JOIN pg_language AS l ON l.oid = p.prolang
            WHERE p.oid = p_function), false)
$$;

-- Whether values of the type may be made in a condition (a constant, a cast
-- to it): making one runs the type's input function or its constraints, and
-- a condition is parsed again (step 3, and after ALTER TABLE) with
-- history_track's privileges; and the condition function would depend on the
-- type, which its owner could drop. Trusted types (see _type_is_trusted),
-- and record (ROW(...) builds one).
CREATE FUNCTION history_track._type_is_evaluable(p_type oid) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p_type = 'record'::regtype OR history_track._type_is_trusted(p_type)
$$;

-- Step 2: check a condition function's parse tree against the allowlist.
-- p_row: the type its parameters must have. Returns which of OLD and NEW the
-- condition reads, or raises what is not allowed.
-- (Long on purpose: the whole allowlist in one place, one query per rule,
-- so a reviewer sees everything a condition may contain at once.)
CREATE FUNCTION history_track._check_condition_tree(p_function regprocedure, p_row regtype,
                                                    p_table regclass, p_label text,
                                                    OUT reads_old boolean, OUT reads_new boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tree text;
    v_bad  text;
BEGIN
    SELECT p.prosqlbody::text INTO v_tree FROM pg_proc AS p
     WHERE p.oid = p_function AND p.prorettype = 'boolean'::regtype AND p.proargtypes = ARRAY[p_row, p_row]::oidvector
       AND p.prolang = (SELECT l.oid FROM pg_language AS l WHERE l.lanname = 'sql')
       AND NOT p.proretset AND NOT p.prosecdef AND p.proconfig IS NULL;
    IF v_tree IS NULL THEN
        v_bad := 'it is not a condition parsed by history_track';
    ELSE
        -- Constants' bytes and quoted strings carry no structure: out of the way.
        v_tree := regexp_replace(v_tree, ':constvalue \d+ \[[-0-9 ]*\]', '', 'g');
        v_tree := regexp_replace(v_tree, '"(\\.|[^"\\])*"', '""', 'g');
        IF v_tree ~ ':hasSubLinks true' OR v_tree ~ '\{SUBLINK ' THEN
            v_bad := 'it contains a subquery';
        ELSIF v_tree ~ ':has(Aggs|WindowFuncs|TargetSRFs) true' THEN
            v_bad := 'it contains an aggregate, window or set-returning function';
        ELSIF v_tree !~ '^\{QUERY :commandType 1 ' OR v_tree !~ ':isReturn true'
              OR v_tree !~ ':rtable <>' OR v_tree !~ ':cteList <>'
              OR (SELECT count(*) FROM regexp_matches(v_tree, '\{(TARGETENTRY|QUERY) ', 'g')) <> 2 THEN
            v_bad := 'it is not one expression';
        END IF;
    END IF;

    IF v_bad IS NULL THEN
        -- Every node is of a kind a plain expression is made of.
        SELECT format('it contains %s', lower(m[1])) INTO v_bad
          FROM regexp_matches(v_tree, '\{([A-Z_]+)', 'g') AS m
         WHERE m[1] <> ALL ('{QUERY,FROMEXPR,TARGETENTRY,BOOLEXPR,OPEXPR,DISTINCTEXPR,NULLIFEXPR,SCALARARRAYOPEXPR,FUNCEXPR,'
                            'CONST,PARAM,FIELDSELECT,RELABELTYPE,COERCEVIAIO,ARRAYCOERCEEXPR,COERCETODOMAIN,CASEEXPR,CASEWHEN,'
                            'CASETESTEXPR,COALESCEEXPR,MINMAXEXPR,NULLTEST,BOOLEANTEST,ARRAYEXPR,ROWEXPR,ROWCOMPAREEXPR,'
                            'SQLVALUEFUNCTION,COLLATEEXPR,SUBSCRIPTINGREF,'
                            -- (the same nodes as PostgreSQL 14 and 15 name them)
                            'CASE,WHEN,COALESCE,MINMAX,ARRAY,ROW,ROWCOMPARE,COLLATE}'::text[])
         LIMIT 1;
    END IF;

    IF v_bad IS NULL THEN
        -- Parameters: only OLD ($1) and NEW ($2).
        SELECT 'it refers to something other than OLD and NEW' INTO v_bad
          FROM regexp_matches(v_tree, '\{PARAM :paramkind (\d+) :paramid (\d+) :paramtype (\d+)', 'g') AS m
         WHERE m[1] <> '0' OR m[2] NOT IN ('1', '2') OR m[3]::oid <> p_row
         LIMIT 1;
    END IF;

    IF v_bad IS NULL THEN
        -- Functions, directly or behind an operator (with its commutator and
        -- negator, which the planner may put in its place).
        WITH called AS (
            SELECT m[1]::oid AS fn
              FROM regexp_matches(v_tree, ':(?:funcid|opfuncid|hashfuncid|negfuncid) (\d+)', 'g') AS m
             WHERE m[1] <> '0'
            UNION
            SELECT f.fn
              FROM (SELECT x.opno::oid AS opno
                      FROM regexp_matches(v_tree, ':opnos? \(?o? ?([0-9 ]+)\)?', 'g') AS m
                     CROSS JOIN LATERAL unnest(string_to_array(btrim(m[1]), ' ')) AS x(opno)) AS u
              JOIN pg_operator AS o ON o.oid = u.opno
             CROSS JOIN LATERAL (VALUES (o.oprcode::oid),
                                        ((SELECT c.oprcode::oid FROM pg_operator AS c WHERE c.oid = o.oprcom)),
                                        ((SELECT n.oprcode::oid FROM pg_operator AS n WHERE n.oid = o.oprnegate))) AS f(fn)
             WHERE f.fn IS NOT NULL
        )
        SELECT format('it calls %s, which conditions may not call', c.fn::regprocedure) INTO v_bad
          FROM called AS c
         WHERE NOT history_track._condition_allows(c.fn)
         ORDER BY c.fn
         LIMIT 1;
    END IF;

    IF v_bad IS NULL THEN
        -- Operators a non-superuser owns (their estimators and commutators are
        -- its to change).
        SELECT format('it uses the operator %s, owned by a non-superuser', o.oid::regoperator) INTO v_bad
          FROM regexp_matches(v_tree, ':opnos? \(?o? ?([0-9 ]+)\)?', 'g') AS m
         CROSS JOIN LATERAL unnest(string_to_array(btrim(m[1]), ' ')) AS x(opno)
          JOIN pg_operator AS o ON o.oid = x.opno::oid
         WHERE NOT history_track._superuser_owned('pg_operator', o.oid, o.oprowner)
         LIMIT 1;
    END IF;

    IF v_bad IS NULL THEN
        -- Types of the values the expression makes (OLD and NEW themselves excepted).
        SELECT format('it makes a value of type %s, whose input or constraints a non-superuser defined', t.oid::regtype)
          INTO v_bad
          FROM regexp_matches(v_tree, ':(?:consttype|resulttype|funcresulttype|opresulttype|casetype|coalescetype|minmaxtype|'
                                       'array_typeid|element_typeid|row_typeid|refcontainertype|refelemtype|refrestype|type) (\d+)',
                                'g') AS m
          JOIN pg_type AS t ON t.oid = m[1]::oid
         WHERE t.oid <> p_row AND NOT history_track._type_is_evaluable(t.oid)
         LIMIT 1;
    END IF;

    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'condition of tracker "%" on table % is not allowed: %', p_label, p_table, v_bad
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Conditions run inside the history trigger, with history_track''s privileges, once per written row.',
                  HINT = 'Use the rows OLD and NEW, operators and PostgreSQL''s immutable functions (and now(), date and time functions); '
                         'no subqueries. A superuser can allow more functions: INSERT INTO history_track.condition_function VALUES '
                         '(''f(argtypes)'').';
    END IF;
    reads_old := v_tree ~ ':paramid 1 ';
    reads_new := v_tree ~ ':paramid 2 ';
END
$$;

-- A SQL function's parse tree without what only tells how it was written
-- (where in the text a node was; whether a cast was written or implied).
CREATE FUNCTION history_track._tree_semantics(p_function regprocedure) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT regexp_replace(p.prosqlbody::text, ':(location|funcformat|relabelformat|coerceformat|convertformat) -?\d+', '', 'g')
      FROM pg_proc AS p WHERE p.oid = p_function
$$;

-- Step 3: the tracker's condition function, made from the checked tree of
-- p_probe: PostgreSQL deparses it, and the function created from that text
-- must have the very same tree (so no name resolves differently for
-- history_track than it did for the caller). p_function: the name to give it
-- (history_track._t<id>_c<n>), replacing a function of that name.
CREATE FUNCTION history_track._compile_condition(p_table regclass, p_label text, p_row regtype,
                                                 p_probe regprocedure, p_function text)
RETURNS regprocedure
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_body     text;
    v_function regprocedure;
BEGIN
    PERFORM history_track._check_condition_tree(p_probe, p_row, p_table, p_label);
    v_body := pg_get_function_sqlbody(p_probe);
    IF to_regprocedure(format('%s(%2$s, %2$s)', p_function, p_row)) IS NOT NULL THEN
        EXECUTE format('DROP FUNCTION %s(%2$s, %2$s)', p_function, p_row);
    END IF;
    EXECUTE format(E'CREATE FUNCTION %1$s(old %2$s, new %2$s) RETURNS boolean\n'
                   'LANGUAGE sql STABLE PARALLEL SAFE\n%3$s', p_function, p_row, v_body);
    v_function := to_regprocedure(format('%s(%2$s, %2$s)', p_function, p_row));
    IF history_track._tree_semantics(v_function) IS DISTINCT FROM history_track._tree_semantics(p_probe) THEN
        RAISE EXCEPTION 'condition of tracker "%" on table % cannot be compiled', p_label, p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = format('PostgreSQL does not read its own rendering of it back the same way: %s', v_body),
                  HINT = 'Write the condition with explicit casts and schema-qualified names.';
    END IF;
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_function);
    EXECUTE format('COMMENT ON FUNCTION %s IS %L', v_function,
                   format('history_track: the condition of tracker %L on %s; generated, do not edit',
                          p_label, history_track._qualified(p_table)));
    RETURN v_function;
END
$$;

-- Whether a function a condition calls may read a setting: one that is not
-- immutable, but for the transaction's and statement's start times; and the
-- immutable ones that read one all the same: those that take a time zone's
-- name (timezone(text, ...), date_trunc(text, timestamptz, text), date_add,
-- date_subtract read timezone_abbreviations), quote_ident
-- (quote_all_identifiers); by name and by the C function they call.
CREATE FUNCTION history_track._reads_settings(p_function oid) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p.proname IN ('now', 'statement_timestamp', 'transaction_timestamp') THEN false
                WHEN p.proname IN ('timezone', 'quote_ident', 'date_trunc', 'date_add', 'date_subtract')
                  OR p.prosrc ~ '^(timestamptz_zone|timestamptz_izone|timetz_zone|timestamp_zone|timestamp_izone|quote_ident'
                                '|timestamptz_trunc_zone|timestamptz_pl_interval_at_zone|timestamptz_mi_interval_at_zone)$'
                THEN true
                ELSE p.provolatile <> 'i' END
      FROM pg_proc AS p WHERE p.oid = p_function
$$;

-- Whether a condition's result may depend on the session's settings: it
-- calls a function or operator that is not immutable (a date's conversion
-- to timestamptz and back follows TimeZone, to_char lc_time, ...), converts
-- through a type's text form, or reads CURRENT_DATE and the like. The trigger
-- functions of its table then run with the settings pinned
-- (_stable_output_settings), so that a writer's SET cannot decide whether a
-- labeled event is recorded. (Anything in the tree that reads like a
-- function or operator counts: an extra match only pins the settings.)
CREATE FUNCTION history_track._condition_varies(p_function regprocedure) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.tree ~ '\{(COERCEVIAIO|SQLVALUEFUNCTION) '
        OR EXISTS (SELECT FROM regexp_matches(t.tree, ':funcid (\d+)', 'g') AS m
                     JOIN pg_proc AS p ON p.oid = m[1]::oid
                    WHERE history_track._reads_settings(p.oid))
        OR EXISTS (SELECT FROM regexp_matches(t.tree, ':(?:opno|opfuncid) (\d+)|:opnos \(o([ 0-9]*)\)', 'g') AS m
                    CROSS JOIN LATERAL unnest(COALESCE(ARRAY[m[1]], '{}') || string_to_array(btrim(m[2]), ' ')) AS u(id)
                     JOIN pg_proc AS p ON p.oid = COALESCE((SELECT o.oprcode FROM pg_operator AS o WHERE o.oid = u.id::oid),
                                                          u.id::oid)
                    WHERE u.id <> '' AND history_track._reads_settings(p.oid))
      FROM (SELECT p.prosqlbody::text AS tree FROM pg_proc AS p WHERE p.oid = p_function) AS t
$$;

-- A tracker's condition as PostgreSQL prints it (what history_trackers shows).
CREATE FUNCTION history_track._condition_text(p_function regprocedure) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT regexp_replace(pg_get_function_sqlbody(p_function), '^RETURN ', '')
$$;

-- Which of OLD and NEW a compiled condition reads.
CREATE FUNCTION history_track._condition_reads(p_function regprocedure, OUT reads_old boolean, OUT reads_new boolean)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.prosqlbody::text ~ ':paramid 1 ', p.prosqlbody::text ~ ':paramid 2 '
      FROM pg_proc AS p WHERE p.oid = p_function
$$;

-- The attribute numbers of the row type a compiled condition reads.
CREATE FUNCTION history_track._condition_columns(p_function regprocedure) RETURNS name[]
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg(DISTINCT a.attname)
      FROM pg_depend AS d
      JOIN pg_attribute AS a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
     WHERE d.classid = 'pg_proc'::regclass AND d.objid = p_function
       AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
$$;

-- Drop the condition functions of p_table that no tracker uses any more.
CREATE FUNCTION history_track._drop_conditions(p_table regclass) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure FROM pg_proc AS p
         WHERE p.pronamespace = 'history_track'::regnamespace
           AND p.proname::text ~ ('^_t' || (SELECT t.table_id FROM history_track.tracked_table AS t WHERE t.table_name = p_table)
                                  || '_c\d+$')
           AND NOT EXISTS (SELECT FROM history_track.tracker AS k WHERE k.condition = p.oid)
    LOOP
        EXECUTE format('DROP FUNCTION %s', v_function);
    END LOOP;
END
$$;
