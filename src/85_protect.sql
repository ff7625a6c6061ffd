-- Protection: history that cannot be rewritten, and triggers that stay.
--
-- * Event tables are append-only: a BEFORE UPDATE OR DELETE OR TRUNCATE
--   statement trigger refuses every change, also to their owner (the
--   extension's owner, normally a superuser), except inside prune_history(),
--   the one sanctioned way to remove history, which is itself logged.
--   (Nobody but the extension's owner may write an event table at all: the
--   table's owner gets SELECT only.)
-- * The triggers that record a tracked table stay: a table owner who drops or
--   disables one (DROP TRIGGER, ALTER TABLE ... DISABLE TRIGGER) is refused;
--   untrack_table() is the way to stop recording.
-- A superuser can still do anything (drop the event trigger, the extension,
-- set session_replication_role): see doc/security.md.

CREATE FUNCTION history_track._refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.current_setting('history_track.pruning', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'event table % is append-only', TG_RELID::regclass
        USING ERRCODE = 'insufficient_privilege',
              DETAIL = pg_catalog.format('%s would rewrite recorded history.', TG_OP),
              HINT = 'Remove old history with prune_history(tbl, before => ...); drop it with untrack_table(tbl, drop_events => true).';
END
$$;

-- Put the append-only guard on an event table (idempotent).
CREATE FUNCTION history_track._protect_event_table(p_event regclass) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS tg
                    WHERE tg.tgrelid = p_event
                      AND tg.tgname = 'history_track_append_only') THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER history_track_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON %s'
            ' FOR EACH STATEMENT EXECUTE FUNCTION history_track._refuse_rewrite()',
            history_track._qualified(p_event));
    END IF;
END
$$;

-- Every relation of a tracked table must have, for each operation its
-- trackers need, the trigger history_track generated: calling its function,
-- under its name, firing for local writes and only for them (ENABLE:
-- ENABLE REPLICA would silence it, ENABLE ALWAYS make it fire for the
-- changes logical replication applies, which statement triggers cannot record
-- right; see _unrecorded_subscription()).
-- What is wrong, for the first relation and operation that is, or NULL.
-- Triggers are recognised by the function they call, not by their name.
CREATE FUNCTION history_track._trigger_problem(p_table regclass, OUT relation regclass, OUT operation text, OUT problem text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.relid, o.op,
           CASE WHEN tg.oid IS NULL THEN 'dropped'
                WHEN tg.tgname::text <> 'history_track_' || o.op THEN 'renamed'
                WHEN tg.tgenabled = 'D' THEN 'disabled'
                WHEN tg.tgenabled = 'R' THEN 'set to fire only for replicated changes'
                WHEN tg.tgenabled = 'A' THEN 'set to fire for replicated changes too'
           END
      FROM history_track.tracked_table AS t
     CROSS JOIN LATERAL unnest(history_track._relations(t.table_name)) WITH ORDINALITY AS r(relid, n)
     CROSS JOIN LATERAL unnest('{insert,update,delete,truncate}'::text[]) WITH ORDINALITY AS o(op, m)
      LEFT JOIN pg_trigger AS tg
        ON tg.tgrelid = r.relid
       AND tg.tgfoid = to_regprocedure(history_track._trigger_function(t.table_id, o.op) || '()')
     WHERE t.table_name = p_table
       AND EXISTS (SELECT FROM history_track.tracker AS k
                    WHERE k.table_name = p_table
                      AND (CASE o.op WHEN 'truncate' THEN 'delete' ELSE o.op END) = ANY (k.operations))
       AND (tg.oid IS NULL OR tg.tgname::text <> 'history_track_' || o.op OR tg.tgenabled <> 'O')
     ORDER BY r.n, o.m   -- the first one: the table before its partitions, insert first
     LIMIT 1
$$;

-- After DDL: refuse what left a tracked table's triggers other than generated.
-- Called by _generate() (so ALTER TABLE, attach and detach are checked), by
-- the DDL event triggers (ALTER TRIGGER ... RENAME) and the sql_drop one.
CREATE FUNCTION history_track._assert_triggers(p_table regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_problem record;
BEGIN
    SELECT * INTO v_problem FROM history_track._trigger_problem(p_table) AS p WHERE p.problem IS NOT NULL;
    IF FOUND THEN
        RAISE EXCEPTION 'the % history trigger of % cannot be %', v_problem.operation, v_problem.relation, v_problem.problem
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('Table %s is tracked: its writes must be recorded.', p_table),
                  HINT = format('To stop recording, use SELECT untrack_table(%L);', p_table::text);
    END IF;
END
$$;

-- The indexes history_track makes on an event table (src/50_api.sql) that it
-- lacks, by their columns: what reading history relies on to be fast.
CREATE FUNCTION history_track._missing_indexes(p_event regclass) RETURNS SETOF text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT x.cols
      FROM (VALUES ('pgh_obj_id', '(pgh_obj_id, pgh_id)'), ('pgh_old_obj_id', '(pgh_old_obj_id, pgh_id)'),
                   ('pgh_created_at', '(pgh_created_at)')) AS x(col, cols)
     WHERE NOT EXISTS (SELECT FROM pg_index AS i
                         JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                        WHERE i.indrelid = p_event AND a.attname = x.col)
$$;

-- Every way a tracked table's recording is not as history_track made it, one
-- row each: what cannot be prevented (a superuser can do anything) is at
-- least found. Empty when all is well. Anyone may call it; it reads only the
-- catalogs.
CREATE FUNCTION @extschema@.check_history()
RETURNS TABLE (table_name regclass, problem text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.table_name, format('the %s history trigger of %s is %s', p.operation, p.relation, p.problem)
      FROM history_track.tracked_table AS t
     CROSS JOIN LATERAL history_track._trigger_problem(t.table_name) AS p
     WHERE p.problem IS NOT NULL
    UNION ALL
    SELECT t.table_name, format('its event table %s has no enabled append-only guard', t.event_table)
      FROM history_track.tracked_table AS t
     WHERE NOT EXISTS (SELECT FROM pg_trigger AS tg
                        WHERE tg.tgrelid = t.event_table AND tg.tgname = 'history_track_append_only'
                          AND tg.tgfoid = to_regprocedure('history_track._refuse_rewrite()') AND tg.tgenabled IN ('O', 'A'))
    UNION ALL
    SELECT t.table_name, format('its event table %s is hash-chained, but the chain trigger is missing or disabled', t.event_table)
      FROM history_track.tracked_table AS t
      JOIN history_track.chain AS c ON c.event_table = t.event_table
     WHERE NOT EXISTS (SELECT FROM pg_trigger AS tg
                        WHERE tg.tgrelid = t.event_table AND tg.tgfoid = to_regprocedure('history_track._chain_link()')
                          AND tg.tgenabled IN ('O', 'A'))
    UNION ALL
    SELECT t.table_name, format('it takes part in table inheritance: %s', history_track._inheritance(t.table_name))
      FROM history_track.tracked_table AS t
     WHERE history_track._inheritance(t.table_name) IS NOT NULL
    UNION ALL
    SELECT t.table_name, format('it receives changes from subscription "%s", which does not bring its event table', s.subname)
      FROM history_track.tracked_table AS t
     CROSS JOIN LATERAL (SELECT history_track._unrecorded_subscription(t.table_name) AS subname) AS s
     WHERE s.subname IS NOT NULL AND EXISTS (SELECT FROM history_track.tracker AS k WHERE k.table_name = t.table_name)
    UNION ALL
    SELECT t.table_name, format('its partition %s is being detached (an interrupted DETACH PARTITION ... CONCURRENTLY): finish it with '
                                'ALTER TABLE %s DETACH PARTITION %s FINALIZE',
                                i.inhrelid::regclass, i.inhparent::regclass, i.inhrelid::regclass)
      FROM history_track.tracked_table AS t
      JOIN pg_inherits AS i ON i.inhdetachpending AND pg_partition_root(i.inhparent) = t.table_name
    UNION ALL
    SELECT t.table_name, format('its event table %s lacks the index on %s history_track made', t.event_table, x.cols)
      FROM history_track.tracked_table AS t
     CROSS JOIN LATERAL history_track._missing_indexes(t.event_table) AS x(cols)
    UNION ALL
    SELECT k.table_name, format('the condition of its tracker "%s" is gone', k.label)
      FROM history_track.tracker AS k
     WHERE k.condition IS NOT NULL AND NOT EXISTS (SELECT FROM pg_proc AS p WHERE p.oid = k.condition)
    UNION ALL
    SELECT NULL, format('the event trigger %s is %s', e.evtname, CASE e.evtenabled WHEN 'D' THEN 'disabled' ELSE 'set to fire only in '
                                                                                                                 'replication sessions' END)
      FROM pg_event_trigger AS e
     WHERE e.evtname IN ('history_track_ddl_end', 'history_track_ddl_start', 'history_track_sql_drop', 'history_track_rewrite')
       AND e.evtenabled NOT IN ('O', 'A')
    ORDER BY 1, 2
$$;

COMMENT ON FUNCTION @extschema@.check_history() IS
    'Every tracked table whose recording is not as history_track made it (a history trigger missing, disabled or renamed, an event '
    'table''s guard, chain trigger or index gone, a condition gone, inheritance, an interrupted DETACH CONCURRENTLY, an unrecorded '
    'subscription, a disabled event trigger); empty when all is well';

-- Log a removal of history (see history_track.prune_log).
CREATE FUNCTION history_track._log_removal(p_table regclass, p_event regclass, p_before timestamptz,
                                           p_count bigint, p_action text) RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO history_track.prune_log (table_name, event_table, before, events_deleted, pruned_by, action,
                                         table_text, event_text)
    VALUES (p_table, p_event, p_before, p_count, history_track._caller(), p_action, p_table::text, p_event::text);
$$;

-- Retention: the only sanctioned way to remove history. Deletes the events
-- of tbl recorded before `before`, except, for every row that existed at that
-- moment, its last state event: history_as_of() stays exact from `before` on,
-- and knows nothing earlier. Logged in history_track.prune_log (who, what,
-- when, how many). The caller must own the table.
CREATE FUNCTION history_track._prune_history(tbl regclass, before timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: the event table belongs to the extension's owner; the
-- caller must own tbl (checked first).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   history_track.tracked_table;
    v_count   bigint;
    v_cut     bigint;
    v_pruning text := pg_catalog.current_setting('history_track.pruning', true);
BEGIN
    PERFORM history_track._begin_change(tbl, 'prune_history', false);
    IF before IS NULL THEN
        RAISE EXCEPTION 'before must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the moment before which history goes, e.g. now() - interval ''1 year''.';
    END IF;
    IF before > pg_catalog.now() THEN
        RAISE EXCEPTION 'before must not be in the future'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a past moment; events are recorded at their transaction''s start.';
    END IF;
    v_table := history_track._tracked(tbl);
    -- The cut is the first event recorded at or after before, by pgh_id, the
    -- order the replay follows: an event's time is its transaction's start,
    -- so a DELETE with an earlier time can follow the INSERT it undoes, and
    -- pruning by time alone would keep the INSERT without it.
    EXECUTE pg_catalog.format(
        'SELECT pgh_e.pgh_id FROM %s AS pgh_e WHERE pgh_e.pgh_created_at >= $1 ORDER BY pgh_e.pgh_id LIMIT 1',
        history_track._qualified(v_table.event_table))
    INTO v_cut USING before;
    -- A hash chain is verified from the last link of a pruned moment on.
    EXECUTE pg_catalog.format(
        'UPDATE history_track.chain AS c SET anchor_seq = l.seq, anchor_hash = l.hash'
        '  FROM (SELECT l.seq, l.hash FROM history_track.chain_link AS l JOIN %s AS pgh_e ON pgh_e.pgh_id = l.pgh_id'
        '         WHERE l.event_table = $2 AND pgh_e.pgh_created_at < $1 AND ($3 IS NULL OR pgh_e.pgh_id < $3)'
        '         ORDER BY l.seq DESC LIMIT 1) AS l'
        ' WHERE c.event_table = $2 AND l.seq > c.anchor_seq',
        history_track._qualified(v_table.event_table))
    USING before, v_table.event_table, v_cut;
    -- Past the append-only guard, for these deletes only (set here, not in a
    -- SET clause: see the note in 75_revert.sql).
    PERFORM pg_catalog.set_config('history_track.pruning', 'on', true);
    EXECUTE pg_catalog.format(
        E'DELETE FROM %s AS pgh_e\n'
        ' WHERE pgh_e.pgh_created_at < $1 AND ($3 IS NULL OR pgh_e.pgh_id < $3)\n'
        '   AND NOT pgh_e.pgh_id = ANY (ARRAY(%s))',
        history_track._qualified(v_table.event_table),
        history_track._replay_sql(tbl, false, 'ids'))
    USING before, history_track._state_labels(), v_cut;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    PERFORM pg_catalog.set_config('history_track.pruning', COALESCE(v_pruning, ''), true);
    PERFORM history_track._log_removal(tbl, v_table.event_table, before, v_count, 'prune');
    RETURN v_count;
END
$$;

-- (SECURITY INVOKER: see _caller().)
CREATE FUNCTION @extschema@.prune_history(tbl regclass, before timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count  bigint;
    v_acting bigint;
BEGIN
    v_acting := history_track._enter();
    v_count := history_track._prune_history(tbl, before);
    PERFORM history_track._leave(v_acting);
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION @extschema@.prune_history(regclass, timestamptz) IS
    'Delete a tracked table''s events recorded before a moment, keeping each then-existing row''s last state; logged in '
    'history_track.prune_log';

-- Tamper evidence: an optional hash chain per event table.
--
-- start_hash_chain(tbl) starts a chain on tbl's event table: from then on,
-- every event written gets a link in history_track.chain_link, in order,
-- whose hash is sha256(previous link's hash || the event's row); the chain's
-- last link is kept in history_track.chain. verify_history(tbl) walks the
-- chain and reports the first link that does not hold: an event changed,
-- deleted or added outside the chain, a link removed. The row is hashed as
-- JSON keyed by attribute number (so a renamed column does not break it;
-- NULLs are left out, so a column added later does not either).
-- Writers of a chained table take turns on the chain's row until they commit.

-- The bytes of an event's row that its link covers.
CREATE FUNCTION history_track._chain_bytes(p_row jsonb, p_columns text[], p_numbers text[]) RETURNS bytea
LANGUAGE sql IMMUTABLE
AS $$
    SELECT pg_catalog.convert_to(COALESCE(pg_catalog.jsonb_object_agg(c.num, p_row OPERATOR(pg_catalog.->) c.name),
                                          '{}'::jsonb)::text, 'UTF8')
      FROM ROWS FROM (pg_catalog.unnest(p_columns), pg_catalog.unnest(p_numbers)) AS c(name, num)
     WHERE pg_catalog.jsonb_typeof(p_row OPERATOR(pg_catalog.->) c.name) OPERATOR(pg_catalog.<>) 'null'
$$;

-- The event table's columns a link covers, and their attribute numbers.
CREATE FUNCTION history_track._chain_columns(p_event regclass, OUT names text[], OUT numbers text[])
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attnum), pg_catalog.array_agg(a.attnum::text ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_event AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- AFTER INSERT ... FOR EACH STATEMENT on a chained event table: link the
-- statement's events, in pgh_id order, after the chain's last link.
CREATE FUNCTION history_track._chain_link() RETURNS trigger
LANGUAGE plpgsql
-- SECURITY DEFINER: the chain belongs to the extension's owner, whoever
-- writes the events (it hashes event rows: trusted types only).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- (an event's JSON -- a timestamptz's, an interval's -- must not depend on
-- the settings of whoever writes or verifies: _output_settings())
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
    v_seq     bigint;
    v_hash    bytea;
    v_columns record := history_track._chain_columns(TG_RELID);
    v_event   record;
    v_seqs    bigint[] := '{}'::bigint[];
    v_ids     bigint[] := '{}'::bigint[];
    v_hashes  bytea[] := '{}'::bytea[];
BEGIN
    -- Writers take turns here: the row stays locked until this transaction ends.
    SELECT c.seq, c.hash INTO STRICT v_seq, v_hash FROM history_track.chain AS c
     WHERE c.event_table = TG_RELID::regclass FOR UPDATE;
    FOR v_event IN SELECT pg_catalog.to_jsonb(pgh_n) AS j FROM pgh_chained AS pgh_n ORDER BY pgh_n.pgh_id LOOP
        v_seq := v_seq + 1;
        v_hash := pg_catalog.sha256(v_hash ||
                                    history_track._chain_bytes(v_event.j, v_columns.names, v_columns.numbers));
        v_seqs := v_seqs || v_seq;
        v_ids := v_ids || (v_event.j ->> 'pgh_id')::bigint;
        v_hashes := v_hashes || v_hash;
    END LOOP;
    INSERT INTO history_track.chain_link (event_table, seq, pgh_id, hash)
    SELECT TG_RELID::regclass, l.seq, l.id, l.hash
      FROM ROWS FROM (pg_catalog.unnest(v_seqs), pg_catalog.unnest(v_ids), pg_catalog.unnest(v_hashes)) AS l(seq, id, hash);
    UPDATE history_track.chain AS c SET seq = v_seq, hash = v_hash
     WHERE c.event_table = TG_RELID::regclass;
    RETURN NULL;
END
$$;

CREATE FUNCTION history_track._start_hash_chain(tbl regclass) RETURNS void
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: the chain and the event table belong to the extension's
-- owner; the caller must own tbl (checked first).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table   history_track.tracked_table;
    v_genesis bytea;
    v_after   bigint;
BEGIN
    PERFORM history_track._begin_change(tbl, 'start_hash_chain');
    v_table := history_track._tracked(tbl);
    IF EXISTS (SELECT FROM history_track.chain AS c WHERE c.event_table = v_table.event_table) THEN
        RAISE NOTICE 'the history of % is already hash-chained, skipping', tbl;
        RETURN;
    END IF;
    -- Events written from now on are linked (the table is locked meanwhile).
    EXECUTE pg_catalog.format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', history_track._qualified(v_table.event_table));
    v_genesis := pg_catalog.sha256(pg_catalog.convert_to(
                     pg_catalog.gen_random_uuid()::text || pg_catalog.clock_timestamp()::text, 'UTF8'));
    EXECUTE pg_catalog.format('SELECT COALESCE(pg_catalog.max(pgh_e.pgh_id), 0) FROM %s AS pgh_e',
                              history_track._qualified(v_table.event_table)) INTO v_after;
    INSERT INTO history_track.chain (event_table, genesis, hash, anchor_hash, after_id, started_by)
    VALUES (v_table.event_table, v_genesis, v_genesis, v_genesis, v_after, history_track._caller());
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER history_track_chain AFTER INSERT ON %s REFERENCING NEW TABLE AS pgh_chained'
        ' FOR EACH STATEMENT EXECUTE FUNCTION history_track._chain_link()',
        history_track._qualified(v_table.event_table));
END
$$;

-- (SECURITY INVOKER: see _caller().)
CREATE FUNCTION @extschema@.start_hash_chain(tbl regclass) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_acting bigint;
BEGIN
    v_acting := history_track._enter();
    PERFORM history_track._start_hash_chain(tbl);
    PERFORM history_track._leave(v_acting);
END
$$;

COMMENT ON FUNCTION @extschema@.start_hash_chain(regclass) IS
    'Start a hash chain over a tracked table''s events from now on; verify_history() checks it';

-- (Long on purpose: the walk over the chain and each way it can break,
-- reported in the order they are found.)
CREATE FUNCTION @extschema@.verify_history(tbl regclass)
RETURNS TABLE (verified bigint, first_broken_link bigint, pgh_id bigint, problem text, last_hash text)
LANGUAGE plpgsql STABLE
-- SECURITY DEFINER: to read the chain; the caller must be allowed to read
-- the history (SELECT on the event table).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- (an event's JSON -- a timestamptz's, an interval's -- must not depend on
-- the settings of whoever writes or verifies: _output_settings())
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
    v_table   history_track.tracked_table := history_track._readable(tbl, 'verify_history', history_track._session_role());
    v_chain   history_track.chain;
    v_columns record;
    v_link    record;
    v_row     jsonb;
    v_prev    bytea;
    v_next    bigint;
BEGIN
    SELECT * INTO v_chain FROM history_track.chain AS c WHERE c.event_table = v_table.event_table;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the history of % has no hash chain', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Start one with SELECT start_hash_chain(%L); events written from then on are '
                                           'linked.', tbl::text);
    END IF;
    v_columns := history_track._chain_columns(v_table.event_table);
    verified := 0;
    v_prev := v_chain.anchor_hash;
    v_next := v_chain.anchor_seq + 1;
    FOR v_link IN
        SELECT l.seq, l.pgh_id, l.hash FROM history_track.chain_link AS l
         WHERE l.event_table = v_table.event_table AND l.seq > v_chain.anchor_seq
         ORDER BY l.seq
    LOOP
        first_broken_link := v_link.seq;
        pgh_id := v_link.pgh_id;
        IF v_link.seq <> v_next THEN
            first_broken_link := v_next;
            pgh_id := NULL;
            problem := pg_catalog.format('link %s is missing', v_next);
            RETURN NEXT;
            RETURN;
        END IF;
        EXECUTE pg_catalog.format('SELECT pg_catalog.to_jsonb(pgh_e) FROM %s AS pgh_e WHERE pgh_e.pgh_id = $1',
                                  history_track._qualified(v_table.event_table))
           INTO v_row USING v_link.pgh_id;
        IF v_row IS NULL THEN
            problem := pg_catalog.format('event %s was deleted', v_link.pgh_id);
            RETURN NEXT;
            RETURN;
        END IF;
        IF pg_catalog.sha256(v_prev || history_track._chain_bytes(v_row, v_columns.names, v_columns.numbers))
           <> v_link.hash THEN
            problem := pg_catalog.format('event %s was changed (or link %s was)', v_link.pgh_id, v_link.seq);
            RETURN NEXT;
            RETURN;
        END IF;
        verified := verified + 1;
        v_prev := v_link.hash;
        v_next := v_next + 1;
    END LOOP;
    first_broken_link := NULL;
    pgh_id := NULL;
    IF v_next - 1 <> v_chain.seq THEN
        first_broken_link := v_next;
        problem := pg_catalog.format('links %s to %s are missing', v_next, v_chain.seq);
        RETURN NEXT;
        RETURN;
    END IF;
    -- Events written since the chain began but never linked (inserted with
    -- the chain trigger disabled).
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.min(pgh_e.pgh_id) FROM %s AS pgh_e WHERE pgh_e.pgh_id >= $1'
        ' AND NOT EXISTS (SELECT FROM history_track.chain_link AS l WHERE l.event_table = $2'
        ' AND l.pgh_id = pgh_e.pgh_id)',
        history_track._qualified(v_table.event_table))
       INTO pgh_id USING v_chain.after_id + 1, v_table.event_table;
    IF pgh_id IS NOT NULL THEN
        problem := pg_catalog.format('event %s is not in the chain', pgh_id);
        RETURN NEXT;
        RETURN;
    END IF;
    last_hash := pg_catalog.encode(v_chain.hash, 'hex');
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION @extschema@.verify_history(regclass) IS
    'Walk a tracked table''s hash chain: how many links hold, the first that does not and why, and the last hash (to keep outside the '
    'database)';
