-- Privileges: the API is for everyone (it checks ownership itself); the
-- internals are for the extension's owner only.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA history_track FROM PUBLIC;
GRANT SELECT ON @extschema@.history_trackers TO PUBLIC;
-- The revert functions run as their caller; these two hand them checked SQL.
GRANT EXECUTE ON FUNCTION history_track._revert_sql(regclass, text, boolean),
                          history_track._event_row_sql(regclass) TO PUBLIC;
