-- Privileges.
--
-- The public API is for everyone: what needs history_track's privileges is
-- SECURITY DEFINER and checks the caller first (ownership of the table,
-- UPDATE on it, SELECT on its history), the caller being the role that
-- called the public function (see _caller()); the rest runs as the caller.
-- Internal helpers that only read the catalog (which everyone may read) or
-- build SQL text may be executed by anyone, since the API functions that run
-- as their caller use them. What writes the catalog, the event tables or the
-- generated objects is the extension owner's alone -- and could do nothing
-- for anyone else anyway, running with the caller's own privileges.
GRANT SELECT ON @extschema@.history_trackers TO PUBLIC;
REVOKE EXECUTE ON FUNCTION
    history_track._begin_change(regclass, text, boolean),
    history_track._prepare_event_table(regclass, name[], name[]),
    history_track._row_type(regclass),
    history_track._compile_condition(regclass, text, regtype, regprocedure, text),
    history_track._drop_conditions(regclass),
    history_track._generate(regclass),
    history_track._drop_triggers(text, regclass[]),
    history_track._trigger_statements(regclass, text, text[], regclass[], boolean),
    history_track._statement_id(regclass),
    history_track._create_triggers(regclass[], name, text, text),
    history_track._drop_generated(integer, boolean),
    history_track._record_rows(regclass, text, text),
    history_track._record_gone(regclass),
    history_track._record_baseline(regclass),
    history_track._record_partition_moves(regclass, history_track.tracked_table, regclass[]),
    history_track._remember_columns(regclass),
    history_track._follow_table(regclass),
    history_track._drop_event_tables(name, boolean),
    history_track._follow_drops(),
    history_track._renumber_columns(regclass),
    history_track._follow_drop(regclass, regtype, name),
    history_track._follow_rename(regclass, regtype, name, name),
    history_track._follow_type(regclass, history_track.tracked_table, regtype, name, oid, integer, oid, integer),
    history_track._protect_event_table(regclass),
    history_track._log_removal(regclass, regclass, timestamptz, bigint, text),
    history_track._context(),
    history_track._context_checked(text),
    history_track._context_json(),
    history_track._context_label(),
    history_track._context_id(),
    history_track._uuid7(timestamptz, bigint, bigint),
    history_track._citus_context_id(),
    history_track._parse_context(text),
    history_track._citus_begin(regclass, text),
    history_track._citus_distribute_event_table(regclass, regclass),
    history_track._on_sql_drop(),
    history_track._on_ddl_start(),
    history_track._on_ddl_end(),
    history_track._on_rewrite(),
    history_track._resync(regclass),
    history_track._refuse_rewrite(),
    history_track._chain_link()
FROM PUBLIC;
