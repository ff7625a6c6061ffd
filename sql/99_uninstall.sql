-- Uninstalling: DROP EXTENSION is refused while a table is tracked (its
-- triggers use the extension's functions); after untracking it goes cleanly.
\set SHOW_CONTEXT never
CREATE TABLE kept (id int PRIMARY KEY);
SELECT track_table('kept');
-- (terse: the DETAIL lists generated function names, which carry catalog ids)
\set VERBOSITY terse
DROP EXTENSION history_track;
\set VERBOSITY default
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT untrack_table('kept', drop_events => true);
DROP EXTENSION history_track;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname = 'history_track';
DROP TABLE kept;
