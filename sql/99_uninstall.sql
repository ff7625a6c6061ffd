-- Uninstalling: DROP EXTENSION is refused while a table is tracked (with or
-- without CASCADE, which would remove the triggers and the guards); after
-- untracking it goes cleanly.
\set SHOW_CONTEXT never
CREATE TABLE kept (id int PRIMARY KEY);
SELECT track_table('kept');
DROP EXTENSION history_track;
DROP EXTENSION history_track CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT untrack_table('kept', drop_events => true);
DROP EXTENSION history_track;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname = 'history_track';
DROP TABLE kept;
