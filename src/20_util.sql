-- Small helpers shared by the API, the generator and the readers: the caller,
-- checks, names, and the types history is stored in.
--
-- (Every function here pins search_path, so a plain = or now() resolves in
-- pg_catalog; the exceptions are listed in 30_context.sql.)

-- The role that called into the API.
--
-- Inside a SECURITY DEFINER function current_user is the function's owner,
-- and nothing in PostgreSQL tells it who called. The session's role (the
-- SET ROLE target, else the session user) is not the caller when the call
-- comes from another role's SECURITY DEFINER function -- a trigger function
-- of a table the session writes, say: that function's owner would act with
-- the session role's rights (a confused deputy). So every SECURITY DEFINER
-- function of the API is called through a SECURITY INVOKER wrapper that
-- first runs _enter() -- as the calling role, whoever that is -- which writes
-- a row naming current_user into history_track.acting; the table's CHECKs
-- refuse any other name, backend or transaction, and its ids come from its
-- sequence only. _caller() is the newest such row of this backend and
-- transaction -- the wrapper's, since nothing but history_track's own code
-- runs between the wrapper's _enter() and its _leave(), which removes
-- exactly that row (an error removes it with the rest of the call). A
-- role calling the SECURITY DEFINER function directly can only have written
-- rows naming itself. (history_track's own DDL, run as the extension's
-- owner, fires the sql_drop event trigger, whose row names the owner while
-- it runs: the same discipline keeps it from outliving it.)
CREATE FUNCTION history_track._enter() RETURNS bigint
LANGUAGE sql VOLATILE
-- SECURITY INVOKER: writes current_user as it is where the API was called.
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO history_track.acting DEFAULT VALUES RETURNING id
$$;

CREATE FUNCTION history_track._leave(p_id bigint) RETURNS void
LANGUAGE sql VOLATILE
-- SECURITY DEFINER: only history_track removes rows of history_track.acting.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM history_track.acting AS a
     WHERE a.pid = pg_backend_pid()
       AND (a.xid <> pg_current_xact_id()      -- a row committed by a direct INSERT
            OR a.id = p_id)
$$;

CREATE FUNCTION history_track._caller() RETURNS name
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_who name;
BEGIN
    SELECT a.who INTO v_who FROM history_track.acting AS a
     WHERE a.pid = pg_backend_pid() AND a.xid = pg_current_xact_id()
     ORDER BY a.id DESC LIMIT 1;
    IF v_who IS NULL THEN
        RAISE EXCEPTION 'history_track cannot tell which role is calling'
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'This function acts for the role that calls the public API function.',
                  HINT = 'Call the public function (track_table, untrack_table, prune_history, start_hash_chain, record_history_event).';
    END IF;
    RETURN v_who;
END
$$;

-- The role the session acts as (the SET ROLE target, or else the session
-- user): whose privileges verify_history() checks, which may run in a
-- read-only transaction where _enter() cannot write.
CREATE FUNCTION history_track._session_role() RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE current_setting('role')
               WHEN 'none' THEN session_user
               ELSE current_setting('role')::name
           END
$$;

-- Whether a role is a superuser: what the types, functions and collations a
-- history relies on must be owned by, so that no other role can change them.
CREATE FUNCTION history_track._is_superuser(p_role oid) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((SELECT r.rolsuper FROM pg_roles AS r WHERE r.oid = p_role), false)
$$;

-- Whether nobody but a superuser can change a database object: its owner is
-- a superuser, and it is not part of an extension a non-superuser owns (which
-- could drop it, or update it to another version: a trusted extension's
-- objects are a superuser's while the extension is its creator's).
CREATE FUNCTION history_track._superuser_owned(p_classid regclass, p_objid oid, p_owner oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT history_track._is_superuser(p_owner)
       AND NOT EXISTS (SELECT FROM pg_depend AS d
                         JOIN pg_extension AS e ON e.oid = d.refobjid
                        WHERE d.classid = p_classid AND d.objid = p_objid AND d.deptype = 'e'
                          AND d.refclassid = 'pg_extension'::regclass
                          AND NOT history_track._is_superuser(e.extowner))
$$;

-- schema.name of a relation, quoted.
CREATE FUNCTION history_track._qualified(p_rel regclass) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_class AS c
      JOIN pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = p_rel
$$;

-- The catalog row of a table that has (or had) history, or an error naming
-- what to do: the one "has no history" check.
CREATE FUNCTION history_track._tracked(p_table regclass) RETURNS history_track.tracked_table
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table history_track.tracked_table;
BEGIN
    SELECT * INTO v_table FROM history_track.tracked_table AS t WHERE t.table_name = p_table;
    IF NOT FOUND THEN
        PERFORM history_track._citus_refuse_worker(p_table);   -- Citus (45_citus.sql): a call sent to a worker
        RAISE EXCEPTION 'table % has no history', p_table
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Track it first: SELECT track_table(%L).', p_table::text);
    END IF;
    RETURN v_table;
END
$$;

-- Refuse unless the caller owns (or has the privileges of the owner of) p_table.
CREATE FUNCTION history_track._assert_owner(p_table regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner name;
BEGIN
    SELECT r.rolname INTO v_owner
      FROM pg_class AS c
      JOIN pg_roles AS r ON r.oid = c.relowner
     WHERE c.oid = p_table;
    IF NOT pg_has_role(history_track._caller(), v_owner, 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table %', p_table
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Table %s is owned by role "%s"; the caller is role "%s".',
                                  p_table, v_owner, history_track._caller()),
                  HINT = 'Only the table''s owner (or a member of the owning role) can change its tracking.';
    END IF;
END
$$;

-- The inheritance a tracked table may not take part in: a parent or a child
-- that is not a partition. A write through an inheritance parent changes the
-- child's rows without firing the child's statement triggers, and a write to
-- the parent would record its children's rows as its own.
CREATE FUNCTION history_track._inheritance(p_table regclass) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(
        (SELECT format('it inherits from %s', i.inhparent::regclass) FROM pg_inherits AS i
          JOIN pg_class AS c ON c.oid = i.inhrelid
          WHERE i.inhrelid = p_table AND NOT c.relispartition ORDER BY i.inhseqno LIMIT 1),
        (SELECT format('%s inherits from it', i.inhrelid::regclass) FROM pg_inherits AS i
          JOIN pg_class AS c ON c.oid = i.inhrelid
          WHERE i.inhparent = p_table AND NOT c.relispartition ORDER BY i.inhrelid LIMIT 1))
$$;

-- Refuse what cannot be tracked, before anything is created.
-- (Long on purpose: one check per reason a table cannot be tracked, each
-- with its error, DETAIL and HINT.)
CREATE FUNCTION history_track._assert_trackable(p_table regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_class       record;
    v_clash       name[];
    v_inheritance text;
    v_code        text;
BEGIN
    SELECT c.relkind, c.relpersistence, c.relispartition, n.nspname
      INTO v_class
      FROM pg_class AS c
      JOIN pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = p_table;

    IF v_class.relkind IN ('v', 'm') THEN
        RAISE EXCEPTION '% is a %', p_table, CASE v_class.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Only ordinary tables can be tracked: history is recorded by triggers on the table that holds the rows.',
                  HINT = 'Track the table(s) the view reads from.';
    ELSIF v_class.relkind = 'f' THEN
        RAISE EXCEPTION '% is a foreign table', p_table
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Writes to a foreign table happen on the remote server, out of reach of local triggers.',
                  HINT = 'Track the table on the server that holds the rows.';
    ELSIF v_class.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', p_table
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Pass an ordinary table to track_table().';
    END IF;

    IF v_class.relispartition THEN
        RAISE EXCEPTION '% is a partition', p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A partition''s history belongs with its partitioned table''s: one event table, one key.',
                  HINT = format('Track the partitioned table instead: SELECT track_table(%L); every partition, also those attached later, '
                                'is recorded with it.',
                                pg_partition_root(p_table)::text);
    END IF;

    IF v_class.relpersistence = 't' THEN
        RAISE EXCEPTION '% is a temporary table', p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A temporary table disappears with its session; its history would be meaningless to anyone else.',
                  HINT = 'Track a permanent (or unlogged) table.';
    END IF;

    IF v_class.nspname IN ('pg_catalog', 'information_schema', 'history_track')
       OR v_class.nspname LIKE 'pg\_toast%' THEN
        RAISE EXCEPTION 'table % belongs to schema "%", which cannot be tracked', p_table, v_class.nspname
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Track your own tables only.';
    END IF;

    IF EXISTS (SELECT FROM history_track.tracked_table AS t WHERE t.event_table = p_table) THEN
        RAISE EXCEPTION '% is an event table', p_table
            USING ERRCODE = 'wrong_object_type',
                  DETAIL = 'Event tables are append-only history written by history_track itself.',
                  HINT = 'Track the table whose history it holds instead.';
    END IF;

    v_inheritance := history_track._inheritance(p_table);
    IF v_inheritance IS NOT NULL THEN
        RAISE EXCEPTION 'table % takes part in table inheritance: %', p_table, v_inheritance
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A write through an inheritance parent changes its children''s rows without their statement triggers, so their '
                           'history would miss it.',
                  HINT = 'Track tables without inheritance (ALTER TABLE ... NO INHERIT ...), or use declarative partitioning and track the '
                         'partitioned table.';
    END IF;

    v_code := history_track._untrusted_code(p_table);
    IF v_code IS NOT NULL THEN
        RAISE EXCEPTION 'table % cannot be tracked: its % a non-superuser owns', p_table, v_code
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'PostgreSQL runs such code whenever it plans a query on the table, and history_track reads the table with its '
                           'own privileges.',
                  HINT = 'Use only PostgreSQL''s own functions and types in the table''s index, statistics and partition key expressions, '
                         'or have a superuser own the function (ALTER FUNCTION ... OWNER TO ...).';
    END IF;

    IF history_track._key_columns(p_table) IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', p_table
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Every event carries the primary key of its row in pgh_obj_id, so that a row''s history can be found.',
                  HINT = format('Add one, e.g. ALTER TABLE %s ADD PRIMARY KEY (...), then track the table.', p_table);
    END IF;

    SELECT array_agg(a.attname ORDER BY a.attnum) INTO v_clash
      FROM pg_attribute AS a
     WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname::text LIKE 'pgh\_%';
    IF v_clash IS NOT NULL THEN
        RAISE EXCEPTION 'table % has columns whose names start with "pgh_": %', p_table,
                        array_to_string(v_clash, ', ')
            USING ERRCODE = 'duplicate_column',
                  DETAIL = 'The pgh_ prefix is reserved for the event table''s own columns (pgh_id, pgh_created_at, ...) and the names '
                           'history_track uses in the code it generates.',
                  HINT = 'Rename those columns, then track the table.';
    END IF;
END
$$;

-- The primary key's columns in key order, or NULL when there is none.
CREATE FUNCTION history_track._key_columns(p_table regclass) RETURNS name[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg(a.attname ORDER BY k.ord)
      FROM pg_index AS i
     CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = p_table AND i.indisprimary
$$;

-- The event table's name for a table name (see doc/reference.md, "Event table names"):
--   <table>_event when that fits in 63 bytes; otherwise the table name cut to
--   fit (on a character boundary), an underscore, the first 8 hex digits of the
--   md5 of the full table name, and _event.
CREATE FUNCTION history_track._event_table_name(p_table_name name) RETURNS name
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name   text := p_table_name::text;
    v_suffix text;
BEGIN
    IF octet_length(v_name) + 6 <= 63 THEN
        RETURN (v_name || '_event')::name;
    END IF;
    v_suffix := '_' || left(md5(v_name), 8) || '_event';
    WHILE octet_length(v_name) + octet_length(v_suffix) > 63 LOOP
        v_name := left(v_name, -1);
    END LOOP;
    RETURN (v_name || v_suffix)::name;
END
$$;

-- Types: what history is stored as.
--
-- A table owner can define code that PostgreSQL runs implicitly around the
-- values of its own types: a domain's CHECK constraints (on every coercion to
-- the domain), casts (CREATE CAST needs only the type's ownership, and JSON
-- conversion looks casts to json up), and it can change a type's meaning
-- later (rename an enum's labels, drop a domain with CASCADE). So an event
-- table holds only *trusted* types, which nobody but a superuser can define
-- or change, and a column of any other type is stored as:
--   * a domain: its base type (its constraints were checked when the row was
--     written to the table);
--   * an array of a domain: an array of the base type;
--   * an enum, composite, range or array type of a non-superuser: its text
--     form (text, or text[] for an array), produced by the type's output
--     function, which is always PostgreSQL's own.
-- Everything history_track runs with its own privileges (the triggers,
-- history_events' JSON, the hash chain, prune and baseline) then touches
-- trusted types only.

-- Whether nobody but a superuser can define or change the type, or anything
-- PostgreSQL runs for its values: owned by a superuser, and so is everything
-- it is made of (a domain's base type and the functions its constraints call,
-- a composite's attribute types, a range's subtype, an array's element type).
CREATE FUNCTION history_track._type_is_trusted(p_type oid) RETURNS boolean
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type record;
BEGIN
    SELECT t.typtype, t.typowner, t.typbasetype, t.typrelid, t.typelem, t.typsubscript
      INTO v_type FROM pg_type AS t WHERE t.oid = p_type;
    IF NOT FOUND OR NOT history_track._superuser_owned('pg_type', p_type, v_type.typowner)
       -- (history_track's own row types: only its generated functions use them)
       OR (SELECT t.typnamespace FROM pg_type AS t WHERE t.oid = p_type) = 'history_track'::regnamespace THEN
        RETURN false;
    END IF;
    CASE v_type.typtype
        WHEN 'd' THEN
            RETURN NOT EXISTS (SELECT FROM pg_constraint AS c
                                 JOIN pg_depend AS d ON d.classid = 'pg_constraint'::regclass AND d.objid = c.oid
                                                    AND d.refclassid = 'pg_proc'::regclass
                                 JOIN pg_proc AS p ON p.oid = d.refobjid
                                WHERE c.contypid = p_type AND NOT history_track._superuser_owned('pg_proc', p.oid, p.proowner))
               AND history_track._type_is_trusted(v_type.typbasetype);
        WHEN 'c' THEN
            RETURN NOT EXISTS (SELECT FROM pg_attribute AS a
                                WHERE a.attrelid = v_type.typrelid AND a.attnum > 0 AND NOT a.attisdropped
                                  AND NOT history_track._type_is_trusted(a.atttypid));
        WHEN 'r' THEN
            RETURN history_track._type_is_trusted((SELECT r.rngsubtype FROM pg_range AS r WHERE r.rngtypid = p_type));
        WHEN 'm' THEN
            RETURN history_track._type_is_trusted((SELECT r.rngsubtype FROM pg_range AS r WHERE r.rngmultitypid = p_type));
        ELSE
            IF v_type.typelem <> 0 AND v_type.typsubscript = 'array_subscript_handler'::regproc THEN
                RETURN history_track._type_is_trusted(v_type.typelem);
            END IF;
            RETURN true;
    END CASE;
END
$$;

-- p_type with its domains peeled off: the base type, the typmod of the
-- innermost domain that sets one (else p_typmod), and whether it was a domain.
CREATE FUNCTION history_track._domain_base(p_type oid, p_typmod integer,
                                           OUT base oid, OUT typmod integer, OUT was_domain boolean)
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type record;
BEGIN
    base := p_type;
    typmod := p_typmod;
    was_domain := false;
    LOOP
        SELECT t.typtype, t.typbasetype, t.typtypmod INTO v_type FROM pg_type AS t WHERE t.oid = base;
        EXIT WHEN v_type.typtype <> 'd';
        was_domain := true;
        IF v_type.typtypmod <> -1 THEN
            typmod := v_type.typtypmod;
        END IF;
        base := v_type.typbasetype;
    END LOOP;
END
$$;

-- How a value of type p_type (typmod p_typmod) is stored in history:
--   stored, typmod  the trusted type (see above) and its typmod;
--   via             'same' (stored as it is), 'base' (a domain, stored as its
--                   base type: a relabeling, no conversion runs) or 'text'
--                   (stored as its text form, cast to the stored type when
--                   that is an array).
CREATE FUNCTION history_track._stored_type(p_type oid, p_typmod integer,
                                           OUT stored oid, OUT typmod integer, OUT via text)
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_outer   record := history_track._domain_base(p_type, p_typmod);
    v_element oid;
    v_inner   record;
BEGIN
    stored := v_outer.base;
    typmod := v_outer.typmod;

    -- (An array type is its element type's typarray: int2vector and the like,
    -- which subscript like arrays, are stored as they are.)
    SELECT t.typelem INTO v_element FROM pg_type AS t
      JOIN pg_type AS e ON e.oid = t.typelem AND e.typarray = t.oid
     WHERE t.oid = stored;
    IF v_element IS NOT NULL THEN
        v_inner := history_track._domain_base(v_element, typmod);
        typmod := v_inner.typmod;
        IF history_track._type_is_trusted(v_inner.base) THEN
            stored := (SELECT t.typarray FROM pg_type AS t WHERE t.oid = v_inner.base);
            via := CASE WHEN v_inner.was_domain THEN 'text' WHEN v_outer.was_domain THEN 'base' ELSE 'same' END;
        ELSE
            stored := 'text[]'::regtype;
            typmod := -1;
            via := 'text';
        END IF;
        RETURN;
    END IF;

    IF history_track._type_is_trusted(stored) THEN
        via := CASE WHEN v_outer.was_domain THEN 'base' ELSE 'same' END;
    ELSE
        stored := 'text'::regtype;
        typmod := -1;
        via := 'text';
    END IF;
END
$$;

-- The SQL of p_expr, a value of type p_type, as history stores it (see
-- _stored_type). No cast, input function or constraint of the type's owner
-- runs: a domain is relabeled to its base type, and any other untrusted value
-- goes through its type's output function (format('%s')), which is always
-- PostgreSQL's own; NULL stays NULL (num_nulls, because a composite whose
-- fields are all NULL IS NULL but is not a NULL value).
CREATE FUNCTION history_track._stored_value_sql(p_expr text, p_type oid, p_typmod integer) RETURNS text
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_stored record := history_track._stored_type(p_type, p_typmod);
BEGIN
    RETURN CASE v_stored.via
        WHEN 'same' THEN p_expr
        WHEN 'base' THEN format('(%s)::%s', p_expr, format_type(v_stored.stored, NULL))
        ELSE format('CASE WHEN pg_catalog.num_nulls(%1$s) = 0 THEN pg_catalog.format(''%%s'', %1$s)%2$s END',
                    p_expr,
                    CASE WHEN v_stored.stored = 'text'::regtype THEN '' ELSE '::' || format_type(v_stored.stored, NULL) END)
    END;
END
$$;

-- The columns the event table mirrors: the table's columns (or p_columns),
-- minus p_exclude and virtual generated columns, in the table's column order,
-- with their own types and the types history stores them as.
CREATE FUNCTION history_track._mirrored_columns(p_table regclass, p_columns name[], p_exclude name[])
RETURNS TABLE (attname name, atttypid oid, atttypmod integer, type_sql text, collation_sql text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attname, a.atttypid, a.atttypmod,
           format_type(s.stored, s.typmod),
           CASE WHEN a.attcollation <> 0 AND a.attcollation <> st.typcollation AND st.typcollation <> 0
                     AND history_track._is_superuser(co.collowner)
                THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END
      FROM pg_attribute AS a
     CROSS JOIN LATERAL history_track._stored_type(a.atttypid, a.atttypmod) AS s
      JOIN pg_type AS st ON st.oid = s.stored
      LEFT JOIN pg_collation AS co ON co.oid = a.attcollation
      LEFT JOIN pg_namespace AS cn ON cn.oid = co.collnamespace
     WHERE a.attrelid = p_table
       AND a.attnum > 0 AND NOT a.attisdropped
       -- Virtual generated columns (PostgreSQL 18+) have no value in the
       -- transition tables; they are computed from the mirrored columns.
       AND a.attgenerated <> 'v'
       AND (p_columns IS NULL OR a.attname = ANY (p_columns))
       AND NOT (a.attname = ANY (COALESCE(p_exclude, '{}')))
     ORDER BY a.attnum
$$;

-- What a tracked table's events record: its mirrored columns that its event
-- table has (a column added since a table tracked with `columns` was
-- tracked is not one), in the table's column order, each with the SQL of its
-- value as history stores it, read from p_alias.
CREATE FUNCTION history_track._recorded_columns(p_table regclass, p_alias text)
RETURNS TABLE (attname name, value_sql text, attnum smallint)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.attname,
           history_track._stored_value_sql(format('%I.%I', p_alias, m.attname), m.atttypid, m.atttypmod),
           a.attnum
      FROM history_track.tracked_table AS t
     CROSS JOIN LATERAL history_track._mirrored_columns(p_table, t.columns, t.exclude) AS m
      JOIN pg_attribute AS a ON a.attrelid = p_table AND a.attname = m.attname
     WHERE t.table_name = p_table
       AND EXISTS (SELECT FROM pg_attribute AS ea
                    WHERE ea.attrelid = t.event_table AND ea.attname = m.attname AND NOT ea.attisdropped)
$$;

-- The lists generated SQL needs of _recorded_columns(p_table, p_alias), in
-- the table's column order: the names, ", a, b" (insert targets), ", <a's
-- value>, <b's value>" (values), "<a's value>, <b's value>" (now) and
-- "pgh_r.a, pgh_r.b" (replayed, from history_as_of's pgh_r). NULLs when no
-- column is recorded.
CREATE FUNCTION history_track._recorded_lists(p_table regclass, p_alias text, OUT names name[], OUT targets text,
                                              OUT "values" text, OUT now text, OUT replayed text)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT array_agg(c.attname ORDER BY c.attnum),
           string_agg(format(', %I', c.attname), '' ORDER BY c.attnum),
           string_agg(', ' || c.value_sql, '' ORDER BY c.attnum),
           string_agg(c.value_sql, ', ' ORDER BY c.attnum),
           string_agg(format('pgh_r.%I', c.attname), ', ' ORDER BY c.attnum)
      FROM history_track._recorded_columns(p_table, p_alias) AS c
$$;

-- The SQL type of pgh_obj_id: the stored type of the key column for a
-- one-column key, jsonb (an array of the key's stored values in key order)
-- for a composite key.
CREATE FUNCTION history_track._obj_id_type(p_table regclass) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN cardinality(k.cols) = 1
                THEN (SELECT format_type(s.stored, s.typmod)
                        FROM pg_attribute AS a
                       CROSS JOIN LATERAL history_track._stored_type(a.atttypid, a.atttypmod) AS s
                       WHERE a.attrelid = p_table AND a.attname = k.cols[1])
                ELSE 'jsonb' END
      FROM (SELECT history_track._key_columns(p_table) AS cols) AS k
$$;

-- The expression computing pgh_obj_id from the row aliased p_alias.
CREATE FUNCTION history_track._obj_id_sql(p_table regclass, p_alias text) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN cardinality(k.cols) = 1 THEN min(v.sql)
                ELSE format('pg_catalog.jsonb_build_array(%s)', string_agg(v.sql, ', ' ORDER BY v.ord)) END
      FROM (SELECT history_track._key_columns(p_table) AS cols) AS k
     CROSS JOIN LATERAL unnest(k.cols) WITH ORDINALITY AS u(col, ord)
      JOIN pg_attribute AS a ON a.attrelid = p_table AND a.attname = u.col
     CROSS JOIN LATERAL (SELECT history_track._stored_value_sql(format('%I.%I', p_alias, a.attname),
                                                                a.atttypid, a.atttypmod) AS sql, u.ord) AS v
     GROUP BY k.cols
$$;

-- ", p.a, p.b" style lists: p_format applied to each name (%1$I: the name).
CREATE FUNCTION history_track._list(p_format text, p_names name[], p_separator text DEFAULT ', ') RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(format(p_format, n), p_separator ORDER BY o) FROM unnest(p_names) WITH ORDINALITY AS u(n, o)
$$;

-- The labels of the events that carry a row's state, which history_as_of()
-- replays: the default trackers' (insert, update, delete), the baseline that
-- track_table(..., baseline => true) records, and revert_row()/revert_table()'s
-- writes. No labeled tracker or manual event may use them.
CREATE FUNCTION history_track._state_labels() RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$ SELECT '{insert,update,delete,baseline,revert}'::text[] $$;

-- The operations trackers fire on, in their order.
CREATE FUNCTION history_track._operations() RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$ SELECT '{insert,update,delete}'::text[] $$;

-- The event table's own columns, in order; the mirrored columns follow them.
CREATE FUNCTION history_track._pgh_columns() RETURNS text[]
LANGUAGE sql IMMUTABLE
AS $$
    SELECT '{pgh_id,pgh_created_at,pgh_label,pgh_operation,pgh_obj_id,pgh_context_id,pgh_context,pgh_old_obj_id,pgh_statement_id}'::text[]
$$;

-- SQL comparing p_expr (a key as pgh_obj_id holds it) with the key given as
-- text in parameter p_param: cast to pgh_obj_id's type, which is always a
-- trusted type (so the index on pgh_obj_id serves, and no input function or
-- cast a type's owner defined runs); parsed as JSON for a composite key.
-- The type is read from the event table's pgh_obj_id column (one catalog
-- lookup: reading one row's history pays no type analysis), from the key
-- columns only while the table has no event table.
CREATE FUNCTION history_track._key_match_sql(p_table regclass, p_expr text, p_param text) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%s = %s::%s', p_expr, p_param,
                  COALESCE((SELECT format_type(a.atttypid, a.atttypmod)
                              FROM history_track.tracked_table AS t
                              JOIN pg_attribute AS a ON a.attrelid = t.event_table AND a.attname = 'pgh_obj_id'
                             WHERE t.table_name = p_table),
                           history_track._obj_id_type(p_table)))
$$;

-- 'ONLY ' for an ordinary table, '' for a partitioned table (its rows are in
-- its partitions).
CREATE FUNCTION history_track._only(p_table regclass) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE c.relkind WHEN 'p' THEN '' ELSE 'ONLY ' END FROM pg_class AS c WHERE c.oid = p_table
$$;

-- Whether p_table has the three default trackers, whose events history_as_of()
-- replays (and a baseline or a revert needs).
CREATE FUNCTION history_track._has_default_trackers(p_table regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*) = 3 FROM history_track.tracker AS t
     WHERE t.table_name = p_table AND t.label = ANY (history_track._operations())
$$;

-- p_table and, for a partitioned table, every partition at every level that
-- is part of the tree (a partition being detached CONCURRENTLY is not: new
-- statements no longer reach it): a write names one of them, and fires that
-- one's statement triggers.
CREATE FUNCTION history_track._relations(p_table regclass) RETURNS regclass[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE tree(rel) AS (
        SELECT p_table::oid
        UNION
        SELECT i.inhrelid FROM pg_inherits AS i JOIN tree ON i.inhparent = tree.rel
          JOIN pg_class AS c ON c.oid = i.inhrelid
         WHERE c.relispartition AND NOT i.inhdetachpending
    )
    SELECT array_agg(rel::regclass ORDER BY rel <> p_table, rel) FROM tree
$$;

-- A deferrable primary key (its table's, or a partition's: ATTACH PARTITION
-- takes a deferrable one) lets two rows share a key until the transaction
-- commits, once a writer defers it (SET CONSTRAINTS ... DEFERRED needs no
-- privilege): the history, which tells rows apart by their key, would merge
-- them, and a replay lose one. So the insert and update triggers of such a
-- table check the key at the end of each statement, as a DEFERRABLE
-- INITIALLY IMMEDIATE key is: a statement may still swap keys. The
-- statement that does, or NULL when every key is immediate.
CREATE FUNCTION history_track._immediate_keys_sql(p_table regclass) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'SET CONSTRAINTS ' || string_agg(format('%I.%I', n.nspname, c.conname), ', ' ORDER BY c.oid) || ' IMMEDIATE'
      FROM unnest(history_track._relations(p_table)) AS r(rel)
      JOIN pg_constraint AS c ON c.conrelid = r.rel AND c.contype = 'p' AND c.condeferrable
      JOIN pg_namespace AS n ON n.oid = c.connamespace
$$;

-- The name of an object history_track generates for a tracked table
-- (history_track._t<table id>_<suffix>), schema-qualified and quoted: its
-- trigger functions (the suffix is the operation), its row type (row) and its
-- condition functions (c<n>). Tests find them by the pattern ^_t[0-9]+_.
CREATE FUNCTION history_track._generated_name(p_table_id integer, p_suffix text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('history_track.%I', format('_t%s_%s', p_table_id, p_suffix))
$$;

-- The generated trigger function of a table for an operation (insert,
-- update, delete, truncate).
CREATE FUNCTION history_track._trigger_function(p_table_id integer, p_operation text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT history_track._generated_name(p_table_id, p_operation)
$$;

-- Whether p_table's history triggers are in place (not yet while pg_restore
-- rebuilds a database: the catalog is back before the triggers are).
CREATE FUNCTION history_track._is_recording(p_table regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM pg_trigger AS tg
                     JOIN history_track.tracked_table AS t ON t.table_name = p_table
                    WHERE tg.tgrelid = p_table
                      AND tg.tgfoid IN (SELECT to_regprocedure(history_track._trigger_function(t.table_id, o) || '()')
                                          FROM unnest('{insert,update,delete,truncate}'::text[]) AS o))
$$;

-- What, in p_table's tree, PostgreSQL runs while it plans a query on it that a
-- non-superuser could have written, or NULL: the expressions of its indexes
-- (and their predicates), of its extended statistics and of its partition
-- key, which PostgreSQL simplifies -- runs, where their arguments are
-- constants -- when it loads them. history_track reads a tracked table with
-- its own privileges (TRUNCATE, baselines, attached partitions, ALTER TABLE,
-- manual events), so such code would run with them: a table that has it is
-- not tracked. (Its CHECK constraints are not read: history_track plans with
-- constraint_exclusion = off. A partition key expression cannot coexist
-- with the primary key a tracked table needs; it is checked all the same.
-- Operator classes need no check: only a superuser can create one.)
CREATE FUNCTION history_track._untrusted_code(p_table regclass) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE tree(rel) AS (
        SELECT p_table::oid
        UNION
        SELECT i.inhrelid FROM pg_inherits AS i JOIN tree ON i.inhparent = tree.rel
    ), rels AS (
        -- Every relation history_track may read: the whole tree, partitions
        -- being detached included (not in _relations()), and any relation
        -- that still has one of the table's history triggers (a partition
        -- leaving, whose rows _record_partition_moves() reads).
        SELECT tree.rel FROM tree
        UNION
        SELECT tg.tgrelid FROM pg_trigger AS tg
          JOIN history_track.tracked_table AS t ON t.table_name = p_table
         WHERE tg.tgfoid IN (SELECT to_regprocedure(history_track._trigger_function(t.table_id, o) || '()')
                               FROM unnest('{insert,update,delete,truncate}'::text[]) AS o)
    ), holders AS (
        SELECT 'pg_class'::regclass AS classid, i.indexrelid AS objid, format('index %s', i.indexrelid::regclass) AS what
          FROM pg_index AS i JOIN rels ON i.indrelid = rels.rel
         WHERE i.indexprs IS NOT NULL OR i.indpred IS NOT NULL
        UNION ALL
        SELECT 'pg_statistic_ext'::regclass, x.oid, format('statistics object %I.%I', n.nspname, x.stxname)
          FROM pg_statistic_ext AS x JOIN rels ON x.stxrelid = rels.rel
          JOIN pg_namespace AS n ON n.oid = x.stxnamespace
         WHERE x.stxexprs IS NOT NULL
        UNION ALL
        SELECT 'pg_class'::regclass, k.partrelid, format('the partition key of %s', k.partrelid::regclass)
          FROM pg_partitioned_table AS k JOIN rels ON k.partrelid = rels.rel
         WHERE k.partexprs IS NOT NULL
    )
    SELECT format('%s uses %s', h.what, u.what)
      FROM holders AS h
     CROSS JOIN LATERAL (
        SELECT format('the function %s', p.oid::regprocedure) AS what
          FROM pg_depend AS d JOIN pg_proc AS p ON p.oid = d.refobjid
         WHERE d.classid = h.classid AND d.objid = h.objid AND d.objsubid = 0 AND d.refclassid = 'pg_proc'::regclass
           AND NOT history_track._superuser_owned('pg_proc', p.oid, p.proowner)
        UNION ALL
        SELECT format('the operator %s', o.oid::regoperator)
          FROM pg_depend AS d JOIN pg_operator AS o ON o.oid = d.refobjid
          JOIN pg_proc AS p ON p.oid = o.oprcode
         WHERE d.classid = h.classid AND d.objid = h.objid AND d.objsubid = 0 AND d.refclassid = 'pg_operator'::regclass
           AND NOT (history_track._superuser_owned('pg_operator', o.oid, o.oprowner)
                    AND history_track._superuser_owned('pg_proc', p.oid, p.proowner))
        UNION ALL
        SELECT format('the type %s', t.oid::regtype)
          FROM pg_depend AS d JOIN pg_type AS t ON t.oid = d.refobjid
         WHERE d.classid = h.classid AND d.objid = h.objid AND d.objsubid = 0 AND d.refclassid = 'pg_type'::regclass
           AND NOT history_track._type_is_trusted(t.oid)
     ) AS u
     ORDER BY 1
     LIMIT 1
$$;

-- Refuse to read p_table with history_track's privileges if the table owner's
-- code would run while PostgreSQL plans the read (_untrusted_code). Called
-- at the read itself (TRUNCATE's trigger, baselines, partitions leaving)
-- as well as when DDL adds such code: a command not followed (REINDEX of an
-- index left behind by a refused CREATE INDEX CONCURRENTLY) must not open a
-- way around the check. Under a snapshot older than the statement the
-- catalog read here could miss what the planner sees: READ COMMITTED only.
CREATE FUNCTION history_track._assert_trusted_code(p_table regclass) RETURNS void
LANGUAGE plpgsql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_code text;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'history_track reads tracked table % only in READ COMMITTED transactions', p_table
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = 'It checks the table''s catalog first, which a snapshot taken earlier in the transaction may show as it '
                           'was.',
                  HINT = 'Run this in a READ COMMITTED transaction.';
    END IF;
    v_code := history_track._untrusted_code(p_table);
    IF v_code IS NOT NULL THEN
        RAISE EXCEPTION 'tracked table % cannot have code a non-superuser owns in what PostgreSQL plans with: its '
                        '%', p_table, v_code
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'PostgreSQL runs such code whenever it plans a query on the table, and history_track reads the table with '
                           'its own privileges.',
                  HINT = 'Use only PostgreSQL''s own functions and types in the table''s index, statistics and partition key '
                         'expressions, or have a superuser own the function (ALTER FUNCTION ... OWNER TO ...).';
    END IF;
END
$$;
