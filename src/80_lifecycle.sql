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
    SELECT pg_catalog.array_agg(d.objid) INTO v_dropped
      FROM pg_catalog.pg_event_trigger_dropped_objects() AS d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass AND d.objsubid OPERATOR(pg_catalog.=) 0;
    IF v_dropped IS NULL THEN
        RETURN;
    END IF;

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
        PERFORM history_track._drop_generated(v_row.tbl::regclass, v_row.table_id);
    END LOOP;
END
$$;

CREATE EVENT TRIGGER history_track_sql_drop ON sql_drop
    EXECUTE FUNCTION history_track._on_sql_drop();
