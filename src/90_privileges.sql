-- Privileges: the API is for everyone (it checks ownership itself); the
-- internals are not, except what set_history_context() needs as its caller.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA history_track FROM PUBLIC;
GRANT EXECUTE ON FUNCTION history_track._context(), history_track._context_id() TO PUBLIC;
GRANT SELECT ON @extschema@.history_trackers TO PUBLIC;
