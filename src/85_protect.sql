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
    IF pg_catalog.current_setting('history_track.pruning', true) OPERATOR(pg_catalog.=) 'on' THEN
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
                    WHERE tg.tgrelid OPERATOR(pg_catalog.=) p_event
                      AND tg.tgname OPERATOR(pg_catalog.=) 'history_track_append_only') THEN
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER history_track_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON %s'
            ' FOR EACH STATEMENT EXECUTE FUNCTION history_track._refuse_rewrite()',
            history_track._qualified(p_event));
    END IF;
END
$$;

-- After DDL: every relation of a tracked table must still have the triggers
-- its trackers need, enabled. Called by _generate() (so ALTER TABLE, attach
-- and detach are checked) and by the sql_drop event trigger.
CREATE FUNCTION history_track._assert_triggers(p_table regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_missing record;
BEGIN
    SELECT r.relid::regclass AS rel, op AS operation, tg.tgenabled INTO v_missing
      FROM (SELECT p_table AS relid UNION SELECT t.relid FROM pg_catalog.pg_partition_tree(p_table) AS t) AS r
     CROSS JOIN pg_catalog.unnest(ARRAY['insert', 'update', 'delete', 'truncate']) AS op
      LEFT JOIN pg_catalog.pg_trigger AS tg
        ON tg.tgrelid OPERATOR(pg_catalog.=) r.relid AND tg.tgname OPERATOR(pg_catalog.=) ('history_track_' || op)
     WHERE EXISTS (SELECT FROM history_track.tracker AS k
                    WHERE k.table_name OPERATOR(pg_catalog.=) p_table
                      AND (CASE op WHEN 'truncate' THEN 'delete' ELSE op END) OPERATOR(pg_catalog.=) ANY (k.operations))
       AND (tg.oid IS NULL OR tg.tgenabled OPERATOR(pg_catalog.<>) ALL ('{O,A}'))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'the % history trigger of % cannot be %', v_missing.operation, v_missing.rel,
                        CASE WHEN v_missing.tgenabled IS NULL THEN 'dropped' ELSE 'disabled' END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Table %s is tracked: its writes must be recorded.', p_table),
                  HINT = pg_catalog.format('To stop recording, use SELECT untrack_table(%L);', p_table::text);
    END IF;
END
$$;

-- Retention: the only sanctioned way to remove history. Deletes the events
-- of tbl recorded before `before`, except, for every row that existed at that
-- moment, its last state event: history_as_of() stays exact from `before` on,
-- and knows nothing earlier. Logged in history_track.prune_log (who, what,
-- when, how many). The caller must own the table.
CREATE FUNCTION @extschema@.prune_history(tbl regclass, before timestamptz) RETURNS bigint
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: the event table belongs to the extension's owner; the
-- caller must own tbl (checked first).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Lets the deletes past the append-only guard, for this call only.
SET history_track.pruning = 'on'
AS $$
DECLARE
    v_table history_track.tracked_table;
    v_count bigint;
BEGIN
    PERFORM history_track._begin_change(tbl, 'prune_history');
    IF before IS NULL THEN
        RAISE EXCEPTION 'before must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the moment before which history goes, e.g. now() - interval ''1 year''.';
    END IF;
    IF before OPERATOR(pg_catalog.>) pg_catalog.now() THEN
        RAISE EXCEPTION 'before must not be in the future'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a past moment; events are recorded at their transaction''s start.';
    END IF;
    SELECT * INTO v_table FROM history_track.tracked_table AS t WHERE t.table_name OPERATOR(pg_catalog.=) tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % has no history', tbl
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = pg_catalog.format('Track it first: SELECT track_table(%L).', tbl::text);
    END IF;
    EXECUTE pg_catalog.format(
        E'DELETE FROM %s AS e\n'
        ' WHERE e.pgh_created_at OPERATOR(pg_catalog.<) $1\n'
        '   AND NOT e.pgh_id OPERATOR(pg_catalog.=) ANY (ARRAY(%s))',
        history_track._qualified(v_table.event_table),
        history_track._replay_sql(tbl, false, true))
    USING before, history_track._state_labels();
    GET DIAGNOSTICS v_count = ROW_COUNT;
    INSERT INTO history_track.prune_log (table_name, event_table, before, events_deleted, pruned_by)
    VALUES (tbl, v_table.event_table, before, v_count, history_track._caller());
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION @extschema@.prune_history(regclass, timestamptz) IS
    'Delete a tracked table''s events recorded before a moment, keeping each then-existing row''s last state; logged in history_track.prune_log';
