-- Lifecycle: following DDL on tracked tables and event tables.
--
-- ALTER TABLE (and CREATE TABLE, ALTER TRIGGER) on a tracked table is
-- followed at ddl_command_end, or refused (the error rolls the whole command
-- back, so nothing is lost):
--   ADD COLUMN      the event table gains the column (when all columns are
--                   mirrored), the triggers record it;
--   RENAME COLUMN   the event table's column is renamed; the trackers' changed
--                   lists and the conditions (parse trees: they refer to the
--                   column by number) follow the new name;
--   DROP COLUMN     the event table keeps the column and its history (new
--                   events store NULL there); refused while a tracker's changed
--                   list or condition uses the column;
--   ALTER ... TYPE  the event table's column changes type too, when every
--                   recorded value survives the conversion (checked by a
--                   round trip); a condition using the column is compiled
--                   again for the new type, or the ALTER refused;
--   RENAME TO, SET SCHEMA   tracking goes on (the event table keeps its name);
--   ATTACH / DETACH PARTITION (also CONCURRENTLY), CREATE TABLE ... PARTITION OF
--                   the partition's triggers are added or removed, its rows
--                   recorded as a baseline coming in or going out;
--   INHERIT, NO INHERIT, CREATE TABLE ... INHERITS, becoming a partition
--                   refused (see _inheritance()) for a tracked table;
--   DISABLE / ENABLE [REPLICA] TRIGGER, ALTER TRIGGER ... RENAME on a history
--                   trigger   refused (see 85_protect.sql);
--   a primary key change      refused (pgh_obj_id is the key);
--   ENABLE / DISABLE RULE, REPLICA IDENTITY, SET (...) and the rest change no
--                   row and need nothing.
--
-- What tells a rename from a drop and an add is history_track.tracked_column:
-- the columns as history_track last followed them, by attribute number. No
-- state is kept between the start and the end of a command, and none in
-- settings (which any role could set): an ALTER TABLE that waited for a
-- track_table() to commit finds the table tracked when it ends, and is
-- followed like any other.

-- Remember p_table's columns as they are now.
CREATE FUNCTION history_track._remember_columns(p_table regclass) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM history_track.tracked_column AS c WHERE c.table_name = p_table;
    INSERT INTO history_track.tracked_column (table_name, attnum, attname, atttype, atttypmod, key_position)
    SELECT p_table, a.attnum, a.attname, a.atttypid, a.atttypmod,
           (SELECT k.ord FROM pg_index AS i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
             WHERE i.indrelid = p_table AND i.indisprimary AND k.attnum = a.attnum)
      FROM pg_attribute AS a
     WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped;
$$;

-- Record the rows of partitions that joined or left p_table's tree since its
-- triggers were last written (ATTACH / DETACH PARTITION): they enter or leave
-- the table without DML, so they are recorded as a baseline (label
-- baseline, BASELINE coming in, DELETE going out), when the table is replayed.
CREATE FUNCTION history_track._record_partition_moves(p_table regclass, p_stored history_track.tracked_table,
                                                      p_relations regclass[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_insert   oid := to_regprocedure(history_track._trigger_function(p_stored.table_id, 'insert') || '()')::oid;
    v_relation regclass;
BEGIN
    IF v_insert IS NULL OR NOT history_track._has_default_trackers(p_table)
       OR NOT EXISTS (SELECT FROM pg_trigger AS tg WHERE tg.tgrelid = p_table AND tg.tgfoid = v_insert) THEN
        RETURN;
    END IF;
    FOR v_relation IN
        SELECT DISTINCT tg.tgrelid::regclass FROM pg_trigger AS tg
         WHERE tg.tgfoid = v_insert AND NOT tg.tgrelid::regclass = ANY (p_relations)
    LOOP
        PERFORM history_track._record_rows(p_table, 'DELETE', format('ONLY %s AS pgh_t', history_track._qualified(v_relation)));
    END LOOP;
    FOR v_relation IN
        SELECT r FROM unnest(p_relations) AS r
         WHERE NOT EXISTS (SELECT FROM pg_trigger AS tg WHERE tg.tgrelid = r AND tg.tgfoid = v_insert)
    LOOP
        PERFORM history_track._record_rows(p_table, 'BASELINE', format('ONLY %s AS pgh_t', history_track._qualified(v_relation)));
    END LOOP;
END
$$;

CREATE FUNCTION history_track._sql_drop() RETURNS void
LANGUAGE plpgsql
-- SECURITY DEFINER: the catalog and the generated functions belong to the
-- extension's owner, whoever drops the table. (Called by _on_sql_drop(); it
-- and the functions it calls read pg_event_trigger_dropped_objects(), which
-- fails anywhere else.)
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller    name := history_track._caller();
    v_superuser boolean := history_track._is_superuser((SELECT r.oid FROM pg_roles AS r WHERE r.rolname = v_caller));
    v_pending   text;
BEGIN
    PERFORM history_track._drop_event_tables(v_caller, v_superuser);
    PERFORM history_track._refuse_dropping_history(v_superuser);
    -- A partition whose DETACH ... CONCURRENTLY was interrupted is outside its
    -- tree (_relations) but still recorded by its history triggers until the
    -- detach ends and records its rows leaving: only history_track (as it
    -- follows the detach) or a superuser drops them.
    IF NOT v_superuser THEN
        SELECT d.object_identity INTO v_pending
          FROM pg_event_trigger_dropped_objects() AS d
          JOIN pg_inherits AS i ON i.inhrelid = to_regclass(format('%I.%I', d.address_names[1], d.address_names[2]))
         WHERE d.object_type = 'trigger' AND d.object_identity ~ '^history_track_(insert|update|delete|truncate) on '
           AND i.inhdetachpending
           AND EXISTS (SELECT FROM history_track.tracker AS k WHERE k.table_name = pg_partition_root(i.inhparent))
         LIMIT 1;
        IF v_pending IS NOT NULL THEN
            RAISE EXCEPTION 'the history trigger % cannot be dropped', v_pending
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      DETAIL = 'Its partition is being detached from a tracked table: its rows leave the history when the detach '
                               'ends.',
                      HINT = 'Finish the detach: ALTER TABLE ... DETACH PARTITION ... FINALIZE.';
        END IF;
    END IF;
    PERFORM history_track._follow_drops();
END
$$;

-- _sql_drop(): an event table dropped (of a tracked, untracked or dropped
-- table): its history goes. Refused while its table is tracked, and to anyone
-- but a superuser (the owner of a schema may drop what the schema holds); a
-- superuser's drop is logged, and the table's hash chain goes with it.
CREATE FUNCTION history_track._drop_event_tables(p_caller name, p_superuser boolean) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row record;
BEGIN
    FOR v_row IN
        SELECT e.event_table::oid AS ev, e.history_of, d.object_identity AS event_text, t.table_name,
               EXISTS (SELECT FROM history_track.tracker AS k WHERE k.table_name = t.table_name) AS tracked,
               EXISTS (SELECT FROM pg_event_trigger_dropped_objects() AS x
                        WHERE x.classid = 'pg_class'::regclass AND x.objid = t.table_name::oid AND x.objsubid = 0) AS with_table
          FROM pg_event_trigger_dropped_objects() AS d
          JOIN history_track.event_table AS e ON e.event_table::oid = d.objid
          LEFT JOIN history_track.tracked_table AS t ON t.event_table = e.event_table
         WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
    LOOP
        IF v_row.tracked AND NOT v_row.with_table THEN
            RAISE EXCEPTION 'cannot drop event table %: table % is tracked', v_row.event_text, v_row.table_name
                USING ERRCODE = 'dependent_objects_still_exist',
                      DETAIL = 'The table''s triggers write to it.',
                      HINT = format('Use untrack_table(%L, drop_events => true) to stop tracking and drop the history.',
                                    v_row.table_name::text);
        END IF;
        IF NOT p_superuser THEN
            RAISE EXCEPTION 'cannot drop event table %: it holds the history of %', v_row.event_text, v_row.history_of
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'History is removed only by prune_history() or untrack_table(..., drop_events => true), which log it.',
                      HINT = CASE WHEN v_row.table_name IS NULL
                                  THEN 'Its table is gone: only a superuser may drop it (and that is logged).'
                                  ELSE format('Use untrack_table(%L, drop_events => true) first.', v_row.table_name::text) END;
        END IF;
        INSERT INTO history_track.prune_log (table_name, event_table, before, events_deleted, pruned_by, action,
                                             table_text, event_text)
        VALUES (COALESCE(v_row.table_name::oid, 0), v_row.ev, NULL, -1, p_caller, 'drop_table',
                v_row.history_of, v_row.event_text);
        DELETE FROM history_track.event_table AS e WHERE e.event_table::oid = v_row.ev;
        -- Its hash chain goes with it.
        DELETE FROM history_track.chain_link AS l WHERE l.event_table::oid = v_row.ev;
        DELETE FROM history_track.chain AS c WHERE c.event_table::oid = v_row.ev;
    END LOOP;
END
$$;

-- _sql_drop(): what a DROP may not take from history, unless the table or
-- event table it belongs to goes too.
CREATE FUNCTION history_track._refuse_dropping_history(p_superuser boolean) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row record;
BEGIN
    -- A column of an event table (DROP TYPE ... CASCADE of a type a
    -- superuser's extension made, which its non-superuser creator may drop;
    -- ALTER TABLE by a superuser): refused to anyone but a superuser.
    IF NOT p_superuser THEN
        SELECT d.object_identity INTO v_row
          FROM pg_event_trigger_dropped_objects() AS d
          JOIN history_track.event_table AS e ON e.event_table::oid = d.objid
         WHERE d.classid = 'pg_class'::regclass AND d.objsubid > 0
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'cannot drop %: history is kept there', v_row.object_identity
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'History is removed only by prune_history() or untrack_table(..., drop_events => true), which log it.',
                      HINT = 'Drop the column from the table only (the event table keeps it), or untrack the table with drop_events => '
                             'true first.';
        END IF;
    END IF;

    -- An index history_track made on an event table (the owner of a schema
    -- may drop what the schema holds): refused to anyone but a superuser,
    -- unless the event table goes too.
    IF NOT p_superuser AND EXISTS (SELECT FROM pg_event_trigger_dropped_objects() AS d WHERE d.object_type = 'index') THEN
        SELECT e.event_table, m.cols INTO v_row
          FROM history_track.event_table AS e
         CROSS JOIN LATERAL history_track._missing_indexes(e.event_table) AS m(cols)
         WHERE NOT EXISTS (SELECT FROM pg_event_trigger_dropped_objects() AS d
                            WHERE d.classid = 'pg_class'::regclass AND d.objid = e.event_table::oid AND d.objsubid = 0)
         LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'cannot drop the index on % of event table %', v_row.cols, v_row.event_table
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'Reading history relies on it; only a superuser may drop it.';
        END IF;
    END IF;

    -- A partition of a tracked table, dropped: its rows would leave the table
    -- without an event. Refused (detaching first records them leaving),
    -- unless the tracked table goes too.
    SELECT r.relation::oid AS rel, r.table_name, d.object_identity INTO v_row
      FROM pg_event_trigger_dropped_objects() AS d
      JOIN history_track.tracked_relation AS r ON r.relation::oid = d.objid
     WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND r.relation::oid <> r.table_name::oid
       AND NOT EXISTS (SELECT FROM pg_event_trigger_dropped_objects() AS x
                        WHERE x.classid = 'pg_class'::regclass AND x.objid = r.table_name::oid AND x.objsubid = 0)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot drop %: it is a partition of tracked table %', v_row.object_identity, v_row.table_name
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = 'Its rows would leave the table without an event.',
                  HINT = format('Detach it first (ALTER TABLE %s DETACH PARTITION ...): its rows are recorded as leaving; then drop it.',
                                v_row.table_name);
    END IF;
END
$$;

-- _sql_drop(): what a DROP changes in what is tracked, followed.
CREATE FUNCTION history_track._follow_drops() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row record;
BEGIN
    -- A trigger dropped by hand (DROP TRIGGER, under whatever name) from a
    -- table that is still tracked, or one of its partitions: refused if it
    -- was a history trigger. (untrack_table() and _generate() first take the
    -- tracker out of the catalog, so their drops pass.)
    FOR v_row IN
        SELECT DISTINCT t.table_name
          FROM pg_event_trigger_dropped_objects() AS d
         CROSS JOIN LATERAL (SELECT to_regclass(format('%I.%I', d.address_names[1], d.address_names[2])) AS rel) AS r
          JOIN history_track.tracked_table AS t
            ON t.table_name = r.rel OR t.table_name = pg_partition_root(r.rel)
         WHERE d.object_type = 'trigger' AND r.rel IS NOT NULL
           AND EXISTS (SELECT FROM history_track.tracker AS k WHERE k.table_name = t.table_name)
    LOOP
        PERFORM history_track._assert_triggers(v_row.table_name);
    END LOOP;

    -- A tracked table dropped: forget it (its event table stays, as an
    -- ordinary table the extension no longer writes, still append-only, in
    -- history_track.event_table).
    FOR v_row IN
        SELECT t.table_name::oid AS tbl, t.table_id
          FROM history_track.tracked_table AS t
          JOIN pg_event_trigger_dropped_objects() AS d
            ON d.classid = 'pg_class'::regclass AND d.objid = t.table_name::oid AND d.objsubid = 0
    LOOP
        DELETE FROM history_track.tracked_table AS t WHERE t.table_name::oid = v_row.tbl;
        PERFORM history_track._drop_generated(v_row.table_id);
    END LOOP;

    -- A column of a tracked table dropped without ALTER TABLE (DROP TYPE ...
    -- CASCADE): followed like an ALTER TABLE.
    FOR v_row IN
        SELECT DISTINCT t.table_name
          FROM pg_event_trigger_dropped_objects() AS d
          JOIN history_track.tracked_table AS t ON t.table_name::oid = d.objid
         WHERE d.classid = 'pg_class'::regclass AND d.objsubid > 0 AND d.original IS FALSE
           AND history_track._is_recording(t.table_name)
    LOOP
        PERFORM history_track._follow_table(v_row.table_name);
        PERFORM history_track._generate(v_row.table_name);
    END LOOP;
END
$$;

-- The event triggers decide what history_track must follow or refuse from
-- its own catalog (tracked_table, tracker, tracked_column, event_table),
-- read with the transaction's snapshot; the DDL itself acts on the current
-- catalog. Under REPEATABLE READ or SERIALIZABLE that snapshot may predate a
-- table's tracking (a command on it would go unfollowed and unchecked: its
-- history triggers dropped, its columns swapped under them). So there, DDL
-- that could concern a tracked table is refused: what the event triggers
-- report, but temporary objects and new tables (with their own indexes and
-- sequences) that have no parent, for ddl_command_end (p_dropped false); for
-- sql_drop, dropping anything but temporary objects.
CREATE FUNCTION history_track._assert_fresh_catalog(p_dropped boolean) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_what text;
BEGIN
    IF current_setting('transaction_isolation') = 'read committed' THEN
        RETURN;
    END IF;
    IF p_dropped THEN
        SELECT d.object_identity INTO v_what FROM pg_event_trigger_dropped_objects() AS d
         WHERE NOT d.is_temporary
         LIMIT 1;
    ELSE
        WITH cmd AS (
            SELECT c.objid, c.schema_name, c.object_identity, c.command_tag,
                   COALESCE((SELECT i.indrelid FROM pg_index AS i WHERE i.indexrelid = c.objid), c.objid) AS rel
              FROM pg_event_trigger_ddl_commands() AS c
        ), made AS (
            SELECT c.objid FROM cmd AS c
             WHERE c.command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'CREATE FOREIGN TABLE', 'CREATE SEQUENCE')
               AND NOT EXISTS (SELECT FROM pg_inherits AS i WHERE i.inhrelid = c.objid)
        )
        SELECT c.object_identity INTO v_what FROM cmd AS c
         WHERE NOT (COALESCE(c.schema_name, '') = 'pg_temp'
                    AND NOT EXISTS (SELECT FROM pg_inherits AS i WHERE i.inhrelid = c.rel))
           AND c.rel NOT IN (SELECT m.objid FROM made AS m)
         LIMIT 1;
    END IF;
    IF v_what IS NOT NULL THEN
        RAISE EXCEPTION 'history_track follows DDL only in READ COMMITTED transactions, not this one on %', v_what
            USING ERRCODE = 'invalid_transaction_state',
                  DETAIL = format('Under %s, history_track would see its catalog as of this transaction''s snapshot, which may '
                                  'predate a table''s tracking.', upper(current_setting('transaction_isolation'))),
                  HINT = 'Run the DDL in a READ COMMITTED transaction.';
    END IF;
END
$$;

-- SECURITY INVOKER: the role whose command dropped the objects is who drops
-- them (see _caller()): a DROP in another role's SECURITY DEFINER function is
-- that role's.
CREATE FUNCTION history_track._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_acting bigint;
BEGIN
    -- While DROP EXTENSION runs, the catalog itself is among the dropped objects.
    IF to_regclass('history_track.tracked_table') IS NULL OR to_regclass('history_track.acting') IS NULL THEN
        RETURN;
    END IF;
    PERFORM history_track._assert_fresh_catalog(true);
    v_acting := history_track._enter();
    PERFORM history_track._sql_drop();
    PERFORM history_track._citus_guard_shards(true);   -- Citus (45_citus.sql): the shards' triggers stay
    PERFORM history_track._leave(v_acting);
END
$$;

CREATE EVENT TRIGGER history_track_sql_drop ON sql_drop
    EXECUTE FUNCTION history_track._on_sql_drop();

-- The names in a comma-separated list of identifiers, as PostgreSQL reads
-- them (unquoted: folded to lower case; quoted: as written, "" being one "),
-- or NULL if the text is not such a list.
CREATE FUNCTION history_track._identifier_list(p_text text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_item  text;
    v_names text[] := ARRAY[]::text[];
BEGIN
    IF p_text IS NULL OR p_text !~ '^\s*("([^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)(\s*,\s*("([^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*))*\s*$' THEN
        RETURN NULL;
    END IF;
    FOR v_item IN SELECT m[1] FROM regexp_matches(p_text, '("([^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)', 'g') AS m LOOP
        v_names := v_names || CASE WHEN left(v_item, 1) = '"' THEN replace(substr(v_item, 2, length(v_item) - 2), '""', '"')
                                   ELSE lower(v_item) END;
    END LOOP;
    RETURN v_names;
END
$$;

-- DROP EXTENSION history_track while tables are tracked, or a DROP SCHEMA or
-- DROP OWNED that would take the extension with it (its schema -- in
-- PostgreSQL 15 and later, public belongs to the database's owner -- and
-- everything in it): refused before PostgreSQL lists every dependent object,
-- and before CASCADE would remove the triggers and the append-only guards
-- (when the extension goes, its own event triggers go first, so nothing could
-- object later). The event trigger cannot see what a DROP names, so it reads
-- the statement: one that names history_track, its schema or its schema's
-- owner is refused while any table is tracked; one that names only other
-- objects passes. One it cannot read (issued by dynamic SQL, where the
-- statement is the outer one, or several statements in one query) is
-- refused if it is a DROP EXTENSION, or if the role running it could drop
-- the extension's schema and is not a superuser.
CREATE FUNCTION history_track._on_ddl_start() RETURNS event_trigger
LANGUAGE plpgsql
-- SECURITY INVOKER: reads only what everyone may read, and current_user is
-- the role running the command (in someone's SECURITY DEFINER function
-- too).
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tables text;
    v_schema name;
    v_owner  name;
    v_names  text[];
    v_hits   boolean;
BEGIN
    IF to_regclass('history_track.tracked_table') IS NULL
       OR tg_tag NOT IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED') THEN
        RETURN;
    END IF;
    SELECT string_agg(DISTINCT k.table_name::text, ', ') INTO v_tables FROM history_track.tracker AS k;
    IF v_tables IS NULL THEN
        IF current_setting('transaction_isolation') = 'read committed' THEN
            RETURN;
        END IF;
        -- (see _assert_fresh_catalog: tables tracked since the snapshot are not seen)
        v_tables := format('perhaps (under %s this transaction''s snapshot may predate them)',
                           upper(current_setting('transaction_isolation')));
    END IF;
    SELECT n.nspname, pg_get_userbyid(n.nspowner) INTO v_schema, v_owner
      FROM pg_namespace AS n WHERE n.oid = '@extschema@'::regnamespace;
    -- The names the statement drops, if it reads as one such statement.
    v_names := history_track._identifier_list(substring(current_query() FROM
                   CASE tg_tag
                       WHEN 'DROP EXTENSION' THEN '(?i)^\s*DROP\s+EXTENSION\s+(?:IF\s+EXISTS\s+)?(.+?)\s*(?:CASCADE|RESTRICT)?\s*;?\s*$'
                       WHEN 'DROP SCHEMA' THEN '(?i)^\s*DROP\s+SCHEMA\s+(?:IF\s+EXISTS\s+)?(.+?)\s*(?:CASCADE|RESTRICT)?\s*;?\s*$'
                       ELSE '(?i)^\s*DROP\s+OWNED\s+BY\s+(.+?)\s*(?:CASCADE|RESTRICT)?\s*;?\s*$' END));
    v_hits := CASE tg_tag
                  WHEN 'DROP EXTENSION' THEN 'history_track' = ANY (v_names)
                  WHEN 'DROP SCHEMA' THEN v_schema = ANY (v_names)
                  -- (CURRENT_USER and the like read as lower-case names)
                  ELSE v_owner = ANY (v_names)
                       OR EXISTS (SELECT FROM unnest(v_names) AS r(name)
                                   WHERE r.name IN ('current_user', 'current_role', 'session_user')
                                     AND pg_has_role(CASE r.name WHEN 'session_user' THEN session_user
                                                                 ELSE current_user END,
                                                     v_owner, 'USAGE'))
              END;
    IF v_names IS NOT NULL AND NOT v_hits THEN
        RETURN;
    END IF;
    IF v_names IS NULL AND tg_tag <> 'DROP EXTENSION'
       AND (history_track._is_superuser((SELECT r.oid FROM pg_roles AS r WHERE r.rolname = current_user))
            OR NOT pg_has_role(current_user, v_owner, 'USAGE')) THEN
        RETURN;     -- (it cannot drop the extension's schema, or it is a superuser's)
    END IF;
    RAISE EXCEPTION 'cannot drop extension history_track% while tables are tracked: %',
                    CASE tg_tag WHEN 'DROP EXTENSION' THEN ''
                                WHEN 'DROP SCHEMA' THEN format(' with its schema %I', v_schema)
                                ELSE format(' with its schema %I, owned by %I', v_schema, v_owner) END,
                    v_tables
        USING ERRCODE = 'dependent_objects_still_exist',
              DETAIL = CASE WHEN v_names IS NULL
                            THEN format('This %s could not be read (dynamic SQL, or several statements in one query?), and it might drop '
                                        'history_track: that would remove the triggers that record those tables and the guards that keep '
                                        'their history append-only.', tg_tag)
                            ELSE 'Dropping it would remove the triggers that record those tables and the guards that keep their history '
                                 'append-only.' END,
              HINT = CASE WHEN v_names IS NULL AND tg_tag <> 'DROP EXTENSION'
                          THEN format('Issue the %s as a statement of its own.', tg_tag)
                          ELSE 'Stop tracking them first, e.g. SELECT untrack_table(table_name) FROM (SELECT DISTINCT table_name FROM '
                               'history_trackers) AS t; their event tables and history stay.' END;
END
$$;

-- The tracked tables (with trackers) a DDL command touched: the table itself
-- (altered: ALTER TABLE on it, or ALTER TYPE of a type one of its columns
-- has, or its table type), the root of a partition in its tree, the parent of
-- a table made to inherit from it, a table attached as a partition or made a
-- parent, the table of an index or statistics object created.
CREATE FUNCTION history_track._touched_tables() RETURNS TABLE (table_name regclass, altered boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH altered_type AS (
        -- (a composite type is reported as its pg_class row)
        SELECT CASE WHEN c.classid = 'pg_class'::regclass
                    THEN (SELECT k.reltype FROM pg_class AS k WHERE k.oid = c.objid)
                    ELSE c.objid END AS type
          FROM pg_event_trigger_ddl_commands() AS c
         WHERE c.command_tag = 'ALTER TYPE' AND c.classid IN ('pg_type'::regclass, 'pg_class'::regclass)
    ), touched AS (
        SELECT CASE WHEN c.classid = 'pg_trigger'::regclass
                    THEN (SELECT tg.tgrelid FROM pg_trigger AS tg WHERE tg.oid = c.objid)
                    WHEN c.classid = 'pg_statistic_ext'::regclass
                    THEN (SELECT x.stxrelid FROM pg_statistic_ext AS x WHERE x.oid = c.objid)
                    -- (a constraint renamed: the generated code names a
                    -- deferrable key's, _immediate_keys_sql)
                    WHEN c.classid = 'pg_constraint'::regclass
                    THEN (SELECT k.conrelid FROM pg_constraint AS k WHERE k.oid = c.objid)
                    ELSE COALESCE((SELECT i.indrelid FROM pg_index AS i WHERE i.indexrelid = c.objid), c.objid) END AS rel,
               -- (ALTER of the table itself, whatever the command's tag:
               -- PostgreSQL renames a table's columns by ALTER VIEW, ALTER
               -- MATERIALIZED VIEW, ALTER FOREIGN TABLE and ALTER TYPE too,
               -- and renames the table by ALTER INDEX)
               c.classid = 'pg_class'::regclass AND c.command_tag LIKE 'ALTER %'
                   AND NOT EXISTS (SELECT FROM pg_index AS i WHERE i.indexrelid = c.objid) AS altered
          FROM pg_event_trigger_ddl_commands() AS c
         WHERE c.classid IN ('pg_class'::regclass, 'pg_trigger'::regclass, 'pg_statistic_ext'::regclass,
                             'pg_constraint'::regclass)
        UNION ALL
        -- ALTER TYPE: the tables with a column of the type (or of its array
        -- type), and its typed tables.
        SELECT d.objid, true
          FROM altered_type AS a
          JOIN pg_type AS ty ON ty.oid = a.type
          JOIN pg_depend AS d ON d.refclassid = 'pg_type'::regclass AND d.refobjid IN (ty.oid, ty.typarray)
                             AND d.classid = 'pg_class'::regclass
        UNION ALL
        SELECT k.oid, true
          FROM altered_type AS a
          JOIN pg_class AS k ON k.reloftype = a.type
    ), candidates AS (
        SELECT t.rel AS tbl, t.altered FROM touched AS t
        UNION ALL
        SELECT pg_partition_root(t.rel), false FROM touched AS t
         WHERE EXISTS (SELECT FROM pg_class AS c WHERE c.oid = t.rel)
        UNION ALL
        SELECT i.inhparent, false FROM touched AS t JOIN pg_inherits AS i ON i.inhrelid = t.rel
        UNION ALL
        SELECT i.inhrelid, false FROM touched AS t JOIN pg_inherits AS i ON i.inhparent = t.rel
    )
    SELECT k.tbl::regclass, bool_or(k.altered)
      FROM candidates AS k
      JOIN history_track.tracked_table AS tt ON tt.table_name = k.tbl
     WHERE EXISTS (SELECT FROM history_track.tracker AS tr WHERE tr.table_name = tt.table_name)
     GROUP BY k.tbl
$$;

-- ALTER SCHEMA (from _on_ddl_end()). The generated functions name the event
-- tables, their sequences, the tracked tables and their partitions and the
-- types they cast to by schema and name, as SQL must; so do history_track's
-- own functions, by the schema it is installed in. A schema that holds any of
-- them keeps its name, for every role: writing the functions again with the
-- new name would not do, since a session in the middle of a write when the
-- rename commits goes on with the body it compiled before, and PostgreSQL
-- plans that body's statements again from their text -- by the old name,
-- which the schema's owner may by then have given to a schema of its own,
-- with a look-alike event table whose triggers would run as the extension's
-- owner. ALTER SCHEMA ... OWNER TO passes: the command's tag does not tell a
-- rename from it, so the statement is read; one that cannot be read as a
-- lone OWNER TO (dynamic SQL, several statements in one query) is refused.
CREATE FUNCTION history_track._refuse_schema_renames() RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- (an identifier, quoted or not: nothing that could open a comment)
    v_ident   text := '("(?:[^"]|"")+"|[[:alpha:]_][[:alnum:]_$]*)';
    v_rename  text[];
    v_schema  name;
    v_holds   text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_event_trigger_ddl_commands() AS c
                    WHERE c.classid = 'pg_namespace'::regclass AND c.command_tag = 'ALTER SCHEMA') THEN
        RETURN;
    END IF;
    -- (Renamed: the name it was installed under no longer names a schema;
    -- ALTER SCHEMA ... OWNER TO keeps it. The schema history_track cannot
    -- be renamed either: this function would not be found.)
    IF to_regnamespace('@extschema@') IS NULL THEN
        RAISE EXCEPTION 'cannot rename schema %: history_track is installed in it', quote_ident((parse_ident('@extschema@'))[1])
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'history_track''s functions name their schema; renamed, another schema could take its name and stand in '
                           'for them.',
                  HINT = 'Keep the schema''s name; to move history_track, reinstall it (its event tables stay).';
    END IF;
    IF current_query() ~* format('^\s*ALTER\s+SCHEMA\s+%s\s+OWNER\s+TO\s+%1$s\s*;?\s*$', v_ident) THEN
        RETURN;
    END IF;
    SELECT n.nspname,
           array_to_string((array_agg(DISTINCT h.what ORDER BY h.what))[1:5], ', ')
           || CASE WHEN count(DISTINCT h.what) > 5 THEN format(' and %s more', count(DISTINCT h.what) - 5) ELSE '' END
      INTO v_schema, v_holds
      FROM pg_event_trigger_ddl_commands() AS c
      JOIN pg_namespace AS n ON n.oid = c.objid
      JOIN history_track._named_in_generated_code() AS h ON h.schema = n.oid
     WHERE c.classid = 'pg_namespace'::regclass AND c.command_tag = 'ALTER SCHEMA'
     GROUP BY n.nspname
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- (At the command's end the schema has its new name already.)
    v_rename := regexp_match(current_query(), format('^\s*ALTER\s+SCHEMA\s+%s\s+RENAME\s+TO\s+%1$s\s*;?\s*$', v_ident), 'i');
    RAISE EXCEPTION '%: history_track''s triggers name what it holds',
                    CASE WHEN v_rename IS NOT NULL
                         THEN format('cannot rename schema %s to %s', quote_ident((parse_ident(v_rename[1]))[1]), quote_ident(v_schema))
                         ELSE format('cannot alter schema %s by this statement', quote_ident(v_schema)) END
        USING ERRCODE = 'feature_not_supported',
              DETAIL = format('It holds %s. A write running while a rename commits would still name them by the old name, which '
                              'another schema could then take.', v_holds),
              HINT = 'Keep the schema''s name, or stop tracking those tables first (untrack_table keeps their history). '
                     'ALTER SCHEMA ... OWNER TO passes when issued as a statement of its own.';
END
$$;

-- The schemas whose names generated code writes, and what of theirs it names:
-- the tracked tables and their partitions, the event tables (and their
-- sequences, which stay with them), and the types the event tables store.
CREATE FUNCTION history_track._named_in_generated_code() RETURNS TABLE (schema oid, what text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH tracked AS (
        SELECT t.table_name, t.event_table FROM history_track.tracked_table AS t
         WHERE EXISTS (SELECT FROM history_track.tracker AS k WHERE k.table_name = t.table_name)
    ), rel AS (
        SELECT t.table_name AS rel FROM tracked AS t
        UNION SELECT t.event_table FROM tracked AS t
        UNION SELECT r.relation FROM history_track.tracked_relation AS r
    )
    SELECT c.relnamespace, format('%s %I', CASE WHEN e.event_table IS NULL THEN 'table' ELSE 'event table' END, c.relname)
      FROM rel AS r
      JOIN pg_class AS c ON c.oid = r.rel
      LEFT JOIN history_track.tracked_table AS e ON e.event_table = r.rel
    UNION ALL
    SELECT ty.typnamespace, format('type %I', ty.typname)
      FROM tracked AS r
      JOIN pg_attribute AS a ON a.attrelid = r.event_table AND a.attnum > 0 AND NOT a.attisdropped
      JOIN pg_type AS t ON t.oid = a.atttypid
      JOIN pg_type AS ty ON ty.oid IN (t.oid, t.typelem, t.typbasetype)
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
    v_table       record;
    v_inheritance text;
    v_resync      boolean;
BEGIN
    IF to_regclass('history_track.tracked_table') IS NULL THEN
        RETURN;
    END IF;
    PERFORM history_track._assert_fresh_catalog(false);
    PERFORM history_track._refuse_schema_renames();
    FOR v_table IN SELECT * FROM history_track._touched_tables() ORDER BY 1 LOOP
        IF (SELECT c.relispartition FROM pg_class AS c WHERE c.oid = v_table.table_name) THEN
            RAISE EXCEPTION 'tracked table % cannot become a partition', v_table.table_name
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'Writes routed through the partitioned table would not fire its statement triggers, so its history would '
                               'miss them.',
                      HINT = format('Stop tracking it first (SELECT untrack_table(%L)) and track the partitioned table '
                                    'instead.', v_table.table_name::text);
        END IF;
        v_inheritance := history_track._inheritance(v_table.table_name);
        IF v_inheritance IS NOT NULL THEN
            RAISE EXCEPTION 'tracked table % cannot take part in table inheritance: %', v_table.table_name, v_inheritance
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = 'A write through an inheritance parent changes its children''s rows without their statement triggers, so '
                               'their history would miss it.',
                      HINT = format('Stop tracking it first (SELECT untrack_table(%L)), or use declarative '
                                    'partitioning.', v_table.table_name::text);
        END IF;
        PERFORM history_track._assert_trusted_code(v_table.table_name);
        IF NOT history_track._is_recording(v_table.table_name) THEN
            CONTINUE;   -- pg_restore rebuilding it: its triggers are not back yet
        END IF;
        v_resync := false;
        IF v_table.altered THEN
            v_resync := history_track._follow_table(v_table.table_name);
        END IF;
        PERFORM history_track._generate(v_table.table_name);
        -- Values the command changed without DML (a column added with a
        -- default, a USING conversion, a table rewritten, an enum's label
        -- renamed): recorded as a baseline.
        IF v_resync OR v_table.altered AND EXISTS (
               SELECT FROM history_track.rewritten AS w
                WHERE w.pid = pg_backend_pid() AND w.xid = pg_current_xact_id()
                  AND w.relid = ANY (history_track._relations(v_table.table_name)::oid[]))
           OR EXISTS (SELECT FROM pg_event_trigger_ddl_commands() AS c WHERE c.command_tag = 'ALTER TYPE') THEN
            PERFORM history_track._resync(v_table.table_name);
        END IF;
        -- (Only this table's: _follow_table's own ALTER TABLE on the event
        -- table runs this function again, nested, before we are done.)
        DELETE FROM history_track.rewritten AS w
         WHERE w.pid = pg_backend_pid()
           AND w.relid = ANY (history_track._relations(v_table.table_name)::oid[]);
    END LOOP;
    -- Rows another transaction committed (one whose table was not handled)
    -- are stale: no other transaction's rows are visible until it commits.
    DELETE FROM history_track.rewritten AS w WHERE w.xid <> pg_current_xact_id();
    PERFORM history_track._citus_guard_shards(false);   -- Citus (45_citus.sql): the shards' triggers stay
END
$$;

-- table_rewrite: remember which relations an ALTER TABLE rewrites (their
-- values may have changed: _on_ddl_end() records them).
CREATE FUNCTION history_track._on_rewrite() RETURNS event_trigger
LANGUAGE plpgsql
-- SECURITY DEFINER: writes history_track.rewritten, whoever runs ALTER TABLE.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regclass('history_track.rewritten') IS NULL
       OR NOT EXISTS (SELECT FROM history_track.tracked_relation AS r
                       WHERE r.relation::oid = pg_event_trigger_table_rewrite_oid()) THEN
        RETURN;
    END IF;
    INSERT INTO history_track.rewritten (pid, xid, relid)
    VALUES (pg_backend_pid(), pg_current_xact_id(), pg_event_trigger_table_rewrite_oid());
END
$$;

-- After pg_restore the columns are numbered again without the dropped
-- ones: find the remembered columns of p_table by name.
CREATE FUNCTION history_track._renumber_columns(p_table regclass) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM history_track.tracked_column AS c
                WHERE c.table_name = p_table
                  AND NOT EXISTS (SELECT FROM pg_attribute AS a WHERE a.attrelid = p_table AND a.attnum = c.attnum)) THEN
        UPDATE history_track.tracked_column AS c SET attnum = -c.attnum WHERE c.table_name = p_table;
        UPDATE history_track.tracked_column AS c SET attnum = a.attnum
          FROM pg_attribute AS a
         WHERE c.table_name = p_table AND a.attrelid = p_table AND a.attname = c.attname AND NOT a.attisdropped;
        DELETE FROM history_track.tracked_column AS c WHERE c.table_name = p_table AND c.attnum < 0;
    END IF;
END
$$;

-- What no ALTER TABLE of a tracked table may change: its primary key (every
-- event stores it), and that no column is named like history_track's own
-- names (added or renamed to since the table was tracked: it could stand for
-- them in generated code).
CREATE FUNCTION history_track._assert_key_and_names_kept(p_table regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name name;
BEGIN
    IF ARRAY(SELECT k.attnum FROM pg_index AS i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
              WHERE i.indrelid = p_table AND i.indisprimary ORDER BY k.ord)
       IS DISTINCT FROM
       ARRAY(SELECT c.attnum FROM history_track.tracked_column AS c
              WHERE c.table_name = p_table AND c.key_position IS NOT NULL ORDER BY c.key_position) THEN
        RAISE EXCEPTION 'cannot change the primary key of tracked table %', p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Every event of the table stores its row''s primary key in pgh_obj_id.',
                  HINT = format('Stop tracking first (SELECT untrack_table(%L)), change the key, then track it again; rename the old event '
                                'table to keep its history apart.', p_table::text);
    END IF;

    SELECT a.attname INTO v_name FROM pg_attribute AS a
     WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped AND a.attname::text LIKE 'pgh\_%'
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'column "%" of tracked table % has a name starting with "pgh_"', v_name, p_table
            USING ERRCODE = 'duplicate_column',
                  DETAIL = 'The pgh_ prefix is reserved for the event table''s own columns and the names history_track uses in the code it '
                           'generates.',
                  HINT = 'Choose another name.';
    END IF;
END
$$;

-- A dropped column of p_table: refused while a tracker watches it or its
-- condition uses it; otherwise it leaves the options and the row type (p_row).
-- The event table keeps the column and what it recorded.
CREATE FUNCTION history_track._follow_drop(p_table regclass, p_row regtype, p_column name) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tracker record;
BEGIN
    SELECT k.label INTO v_tracker FROM history_track.tracker AS k
     WHERE k.table_name = p_table AND p_column = ANY (k.changed) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot drop column "%" of table %: tracker "%" watches it', p_column, p_table, v_tracker.label
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = 'The tracker records an update when one of its changed columns changed.',
                  HINT = format('Remove the tracker first: SELECT untrack_table(%L, label => %L);', p_table::text, v_tracker.label);
    END IF;
    SELECT k.label, k.condition INTO v_tracker FROM history_track.tracker AS k
     WHERE k.table_name = p_table AND p_column = ANY (history_track._condition_columns(k.condition)) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot drop a column of table % that the condition of tracker "%" uses', p_table, v_tracker.label
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = format('Column "%s"; the condition is: '
                                  '%s', p_column, history_track._condition_text(v_tracker.condition)),
                  HINT = format('Remove the tracker first: SELECT untrack_table(%L, label => %L);', p_table::text, v_tracker.label);
    END IF;
    UPDATE history_track.tracked_table AS t
       SET columns = array_remove(t.columns, p_column), exclude = array_remove(t.exclude, p_column)
     WHERE t.table_name = p_table;
    EXECUTE format('ALTER TYPE %s DROP ATTRIBUTE IF EXISTS %I', p_row, p_column);
END
$$;

-- A renamed column of p_table: renamed in the event table (when it records
-- the column and the new name is free there), the row type (p_row), the
-- options and the trackers' watched columns.
CREATE FUNCTION history_track._follow_rename(p_table regclass, p_row regtype, p_old name, p_new name) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table history_track.tracked_table := history_track._tracked(p_table);
    v_event text := history_track._qualified(v_table.event_table);
BEGIN
    IF EXISTS (SELECT FROM pg_attribute AS a
                WHERE a.attrelid = v_table.event_table AND NOT a.attisdropped AND a.attname = p_old)
       AND (v_table.columns IS NULL OR p_old = ANY (v_table.columns))
       AND NOT p_old = ANY (v_table.exclude) THEN
        IF EXISTS (SELECT FROM pg_attribute AS a
                    WHERE a.attrelid = v_table.event_table AND NOT a.attisdropped AND a.attname = p_new) THEN
            RAISE EXCEPTION 'cannot rename column "%" of table % to "%": its event table % has a column "%"',
                            p_old, p_table, p_new, v_table.event_table, p_new
                USING ERRCODE = 'duplicate_column',
                      DETAIL = 'The event table keeps the history of a dropped column under that name.',
                      HINT = 'Choose another name.';
        END IF;
        EXECUTE format('ALTER TABLE %s RENAME COLUMN %I TO %I', v_event, p_old, p_new);
    END IF;
    IF EXISTS (SELECT FROM pg_attribute AS a
                WHERE a.attrelid = (SELECT t.typrelid FROM pg_type AS t WHERE t.oid = p_row)
                  AND a.attname = p_old AND NOT a.attisdropped) THEN
        EXECUTE format('ALTER TYPE %s RENAME ATTRIBUTE %I TO %I', p_row, p_old, p_new);
    END IF;
    UPDATE history_track.tracked_table AS t
       SET columns = array_replace(t.columns, p_old, p_new),
           exclude = array_replace(t.exclude, p_old, p_new)
     WHERE t.table_name = p_table;
    UPDATE history_track.tracker AS k SET changed = array_replace(k.changed, p_old, p_new)
     WHERE k.table_name = p_table;
END
$$;

-- Bring p_table's event table, row type, catalog and triggers up to date with
-- an ALTER TABLE, or refuse it: the columns now against tracked_column.
-- Returns whether a column was added with a value or changed its type (so
-- that values may have changed without DML: see _resync()).
CREATE FUNCTION history_track._follow_table(p_table regclass) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   history_track.tracked_table := history_track._tracked(p_table);
    v_row     regtype := to_regtype(history_track._generated_name(v_table.table_id, 'row'));
    v_old     record;
    v_changed boolean := false;
BEGIN
    IF v_row IS NULL THEN
        v_row := history_track._row_type(p_table);   -- (a table tracked before 0.3.0)
    END IF;

    PERFORM history_track._renumber_columns(p_table);

    PERFORM history_track._assert_key_and_names_kept(p_table);

    -- Dropped columns first (they free their names), then renamed, then retyped.
    FOR v_old IN
        SELECT c.attnum, c.attname, c.atttype::oid AS typid, c.atttypmod AS typmod, a.attisdropped,
               a.attname AS now_name, a.atttypid AS now_typid, a.atttypmod AS now_typmod
          FROM history_track.tracked_column AS c
          JOIN pg_attribute AS a ON a.attrelid = p_table AND a.attnum = c.attnum
         WHERE c.table_name = p_table
         ORDER BY NOT a.attisdropped, a.attname = c.attname, c.attnum
    LOOP
        IF v_old.attisdropped THEN
            PERFORM history_track._follow_drop(p_table, v_row, v_old.attname);
        ELSIF v_old.now_name <> v_old.attname THEN
            PERFORM history_track._follow_rename(p_table, v_row, v_old.attname, v_old.now_name);
            SELECT * INTO v_table FROM history_track.tracked_table AS t WHERE t.table_name = p_table;
        END IF;
        IF NOT v_old.attisdropped AND (v_old.now_typid, v_old.now_typmod) IS DISTINCT FROM (v_old.typid, v_old.typmod) THEN
            -- Citus (45_citus.sql): a new type may change values without DML (see _resync()).
            PERFORM history_track._citus_refuse(p_table, 'an ALTER TABLE that changes values without DML',
                'Add a column of the new type, fill it with an UPDATE (which is recorded), then drop the old one.');
            v_changed := true;
            PERFORM history_track._follow_type(p_table, v_table, v_row, v_old.now_name, v_old.typid, v_old.typmod,
                                               v_old.now_typid, v_old.now_typmod);
        END IF;
    END LOOP;

    -- New columns, in the row type, and in the event table when it mirrors
    -- every column.
    PERFORM history_track._row_type(p_table);
    SELECT * INTO v_table FROM history_track.tracked_table AS t WHERE t.table_name = p_table;
    PERFORM history_track._prepare_event_table(p_table, v_table.columns, v_table.exclude);
    -- A new column changed the rows' values if it was added with a value
    -- (atthasmissing: a default; one computed per row rewrites the table,
    -- which _on_rewrite() notes). Added without, it is NULL in every row, as
    -- the history replays a column its events do not have.
    v_changed := v_changed OR EXISTS (
        SELECT FROM pg_attribute AS a
         WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped AND a.atthasmissing
           AND NOT EXISTS (SELECT FROM history_track.tracked_column AS c WHERE c.table_name = p_table AND c.attnum = a.attnum));
    PERFORM history_track._remember_columns(p_table);
    RETURN v_changed;
END
$$;

-- A tracked column's type changed: change the event table's column (and
-- pgh_obj_id / pgh_old_obj_id, for a one-column key) the same way, if every
-- recorded value comes back unchanged from the new type; and the row type's
-- attribute, compiling the conditions that read it again. Only between
-- trusted types, which is all history stores.
-- (Long on purpose: refusing a change that would alter recorded values and
-- making it are one sequence over the same columns; split, the check and the
-- ALTER could drift apart.)
CREATE FUNCTION history_track._follow_type(p_table regclass, p_stored history_track.tracked_table, p_row regtype,
                                           p_column name, p_old_type oid, p_old_typmod integer,
                                           p_new_type oid, p_new_typmod integer)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event   text := history_track._qualified(p_stored.event_table);
    v_old     record := history_track._stored_type(p_old_type, p_old_typmod);
    v_new     record := history_track._stored_type(p_new_type, p_new_typmod);
    v_old_sql text := format_type(v_old.stored, v_old.typmod);
    v_new_sql text := format_type(v_new.stored, v_new.typmod);
    v_targets name[] := '{}'::name[];
    v_target  name;
    v_lost    bigint;
    v_message text;
    v_state   text;
    v_labels  text[];
    v_names   text[];
    v_bodies  text[];
    v_function regprocedure;
BEGIN
    IF v_old_sql = v_new_sql THEN
        RETURN;   -- stored the same way (a domain over the same type, ...)
    END IF;
    IF EXISTS (SELECT FROM pg_attribute AS a
                WHERE a.attrelid = p_stored.event_table AND NOT a.attisdropped
                  AND a.attname = p_column AND format_type(a.atttypid, a.atttypmod) = v_old_sql) THEN
        v_targets := ARRAY[p_column];
    END IF;
    IF history_track._key_columns(p_table) = ARRAY[p_column] THEN
        v_targets := v_targets || '{pgh_obj_id,pgh_old_obj_id}'::name[];
    END IF;
    IF cardinality(v_targets) > 0 AND EXISTS (SELECT FROM history_track.chain AS c WHERE c.event_table = p_stored.event_table) THEN
        RAISE EXCEPTION 'cannot change the type of column "%" of tracked table %: its history is hash-chained', p_column, p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'Converting recorded values would change what the chain''s links cover.',
                  HINT = 'Add a column of the new type and copy the values instead.';
    END IF;
    FOREACH v_target IN ARRAY v_targets LOOP
        BEGIN
            EXECUTE format(
                'SELECT pg_catalog.count(*) FROM %s AS pgh_e WHERE pgh_e.%2$I IS NOT NULL'
                ' AND pgh_e.%2$I::%3$s::%4$s::text IS DISTINCT FROM pgh_e.%2$I::text',
                v_event, v_target, v_new_sql, v_old_sql) INTO v_lost;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
            v_lost := -1;
        END;
        IF v_lost <> 0 THEN
            RAISE EXCEPTION 'cannot change the type of column "%" of tracked table % from % to %', p_column, p_table,
                            format_type(p_old_type, p_old_typmod), format_type(p_new_type, p_new_typmod)
                USING ERRCODE = 'datatype_mismatch',
                      DETAIL = CASE WHEN v_lost < 0
                                    THEN format('Recorded values of %s.%I do not convert: %s', p_stored.event_table, v_target, v_message)
                                    ELSE format('%s recorded values of %s.%I would change in the '
                                                'conversion.', v_lost, p_stored.event_table, v_target) END,
                      HINT = 'Change it to a type that holds every recorded value (e.g. a wider one), or untrack the table, change the '
                             'type, and track it again.';
        END IF;
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING %2$I::%3$s', v_event, v_target, v_new_sql);
    END LOOP;

    -- The row type: the conditions are compiled again for the new type (from
    -- PostgreSQL's rendering of their trees), or the ALTER refused. All of
    -- them, not only those that read the column: PostgreSQL's recent minor
    -- releases (15.20 here) refuse to change an attribute's type while a
    -- function with a stored body takes the row type.
    SELECT array_agg(k.label ORDER BY k.label), array_agg(k.condition::oid::regproc::text ORDER BY k.label),
           array_agg(pg_get_function_sqlbody(k.condition) ORDER BY k.label)
      INTO v_labels, v_names, v_bodies
      FROM history_track.tracker AS k
     WHERE k.table_name = p_table AND k.condition IS NOT NULL;
    FOR v_i IN 1 .. COALESCE(cardinality(v_labels), 0) LOOP
        EXECUTE format('DROP FUNCTION %s(%2$s, %2$s)', v_names[v_i], p_row);
    END LOOP;
    EXECUTE format('ALTER TYPE %s ALTER ATTRIBUTE %I TYPE %s', p_row, p_column, v_new_sql);
    FOR v_i IN 1 .. COALESCE(cardinality(v_labels), 0) LOOP
        BEGIN
            EXECUTE format(E'CREATE FUNCTION %1$s(old %2$s, new %2$s) RETURNS boolean\n'
                           'LANGUAGE sql STABLE PARALLEL SAFE\n%3$s', v_names[v_i], p_row, v_bodies[v_i]);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_state = RETURNED_SQLSTATE;
            RAISE EXCEPTION 'the condition of tracker "%" does not fit table % as altered', v_labels[v_i], p_table
                USING ERRCODE = v_state,
                      DETAIL = format('%s The condition is: %s', v_message, regexp_replace(v_bodies[v_i], '^RETURN ', '')),
                      HINT = format('Remove the tracker first (SELECT untrack_table(%L, label => %L)), alter the table, and declare the '
                                    'tracker again with a condition that fits.',
                                    p_table::text, v_labels[v_i]);
        END;
        v_function := to_regprocedure(format('%s(%2$s, %2$s)', v_names[v_i], p_row));
        PERFORM history_track._check_condition_tree(v_function, p_row, p_table, v_labels[v_i]);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', v_function);
        UPDATE history_track.tracker AS k SET condition = v_function
         WHERE k.table_name = p_table AND k.label = v_labels[v_i];
    END LOOP;
END
$$;

-- Logical replication: changes a subscription applies do not fire the history
-- triggers (they are ordinary, ENABLE ORIGIN triggers: the apply worker runs
-- with session_replication_role = replica), so a subscriber's history of a
-- table comes from the publisher, in its event table, published with it (the
-- same events, the same context). A tracked table that receives changes from
-- a subscription that does not bring its event table: what would be history
-- missing from it. Reported by _warn_subscribed() at track_table() and by
-- check_history().
CREATE FUNCTION history_track._unrecorded_subscription(p_table regclass) RETURNS name
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.subname
      FROM pg_subscription_rel AS r
      JOIN pg_subscription AS s ON s.oid = r.srsubid
      JOIN history_track.tracked_table AS t ON t.table_name = p_table
     WHERE r.srrelid = ANY (history_track._relations(p_table))
       AND NOT EXISTS (SELECT FROM pg_subscription_rel AS e WHERE e.srsubid = r.srsubid AND e.srrelid = t.event_table)
     ORDER BY s.subname
     LIMIT 1
$$;

CREATE FUNCTION history_track._warn_subscribed(p_table regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_subscription name := history_track._unrecorded_subscription(p_table);
BEGIN
    IF v_subscription IS NOT NULL THEN
        RAISE WARNING 'table % receives changes from subscription "%", which its history will not record', p_table, v_subscription
            USING DETAIL = 'Changes applied by logical replication do not fire the history triggers.',
                  HINT = format('Publish its event table on the publisher along with the table (ALTER PUBLICATION ... ADD TABLE %s), and '
                                'refresh the subscription: the history comes with the changes.',
                                (SELECT t.event_table FROM history_track.tracked_table AS t WHERE t.table_name = p_table));
    END IF;
END
$$;

CREATE EVENT TRIGGER history_track_ddl_start ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION history_track._on_ddl_start();
CREATE EVENT TRIGGER history_track_ddl_end ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'ALTER TRIGGER', 'CREATE INDEX', 'ALTER INDEX',
                 'CREATE STATISTICS', 'ALTER TYPE', 'ALTER VIEW', 'ALTER MATERIALIZED VIEW',
                 'ALTER FOREIGN TABLE', 'ALTER SCHEMA', 'CREATE FOREIGN TABLE', 'CREATE TABLE AS')
    EXECUTE FUNCTION history_track._on_ddl_end();
CREATE EVENT TRIGGER history_track_rewrite ON table_rewrite
    EXECUTE FUNCTION history_track._on_rewrite();
