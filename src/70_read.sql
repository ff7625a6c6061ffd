-- Reading history.

-- Every event of one context (one transaction's context id), across all event
-- tables the caller may read: grouped by event table, in write order within
-- each. A context id carries its transaction's start time, which is every
-- one of its events' pgh_created_at: each event table is searched through its
-- BRIN index on pgh_created_at around that millisecond.
CREATE FUNCTION @extschema@.history_context_events(context_id uuid)
RETURNS TABLE (
    table_name     regclass,
    event_table    regclass,
    pgh_id         bigint,
    pgh_created_at timestamptz,
    pgh_label      text,
    pgh_operation  text,
    pgh_obj_id     jsonb,
    pgh_context    jsonb,
    data           jsonb
)
LANGUAGE plpgsql STABLE
-- SECURITY DEFINER: to read the catalog; each event table is only searched
-- when the caller may SELECT from it.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id     uuid := history_context_events.context_id;
    v_caller name := history_track._caller();
    v_table  record;
BEGIN
    FOR v_table IN
        SELECT t.table_name AS tbl, t.event_table AS ev FROM history_track.tracked_table AS t
         WHERE pg_catalog.has_table_privilege(v_caller, t.event_table, 'SELECT')
         ORDER BY t.event_table::text
    LOOP
        RETURN QUERY EXECUTE pg_catalog.format(
            E'SELECT $2, $3, e.pgh_id, e.pgh_created_at, e.pgh_label, e.pgh_operation,\n'
            '       pg_catalog.to_jsonb(e.pgh_obj_id), e.pgh_context,\n'
            '       pg_catalog.to_jsonb(e) OPERATOR(pg_catalog.-) ''{pgh_id,pgh_created_at,pgh_label,pgh_operation,pgh_obj_id,pgh_context_id,pgh_context}''::text[]\n'
            '  FROM %s AS e\n'
            ' WHERE e.pgh_created_at OPERATOR(pg_catalog.>=) ($4 OPERATOR(pg_catalog.-) interval ''1 millisecond'')\n'
            '   AND e.pgh_created_at OPERATOR(pg_catalog.<) ($4 OPERATOR(pg_catalog.+) interval ''2 milliseconds'')\n'
            '   AND e.pgh_context_id OPERATOR(pg_catalog.=) $1\n'
            ' ORDER BY e.pgh_id',
            history_track._qualified(v_table.ev))
        USING v_id, v_table.tbl, v_table.ev, history_track._context_time(v_id);
    END LOOP;
END
$$;

COMMENT ON FUNCTION @extschema@.history_context_events(uuid) IS
    'Every event of one context, across the event tables the caller may read';
