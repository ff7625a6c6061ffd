-- Privileges: the API is for everyone (it checks ownership itself); the
-- internals are for the extension's owner only.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA history_track FROM PUBLIC;
GRANT SELECT ON @extschema@.history_trackers TO PUBLIC;
