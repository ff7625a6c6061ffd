-- Manual events: record what no DML shows, for one row, with a label and
-- optional context. The row is stored as it is now; pgh_operation is MANUAL.
\set SHOW_CONTEXT never
CREATE TABLE reports (id int PRIMARY KEY, title text);
CREATE TABLE lines (report int, line int, body text, PRIMARY KEY (report, line));
SELECT track_table('reports');
SELECT track_table('lines');
INSERT INTO reports VALUES (1, 'Q1');
INSERT INTO lines VALUES (1, 1, 'total');

-- The key as a value ...
SELECT record_history_event('reports', 1, 'exported') > 0 AS recorded;
-- ... as text, with context of its own merged into the transaction's.
BEGIN;
SELECT set_history_context('{"user": "alice"}') IS NOT NULL AS context_set;
SELECT record_history_event('reports', '1', 'emailed', '{"to": "board@example.com"}') > 0 AS recorded;
COMMIT;
-- A composite key as pgh_obj_id shows it: a JSON array.
SELECT record_history_event('lines', '[1, 1]'::jsonb, 'approved') > 0 AS recorded;

SELECT pgh_label, pgh_operation, pgh_obj_id, pgh_context, pgh_context_id IS NOT NULL AS has_context_id, title
  FROM reports_event ORDER BY pgh_id;
SELECT pgh_label, pgh_operation, pgh_obj_id, body FROM lines_event ORDER BY pgh_id;

-- Refused: no such row, reserved label, untracked table, non-object context.
SELECT record_history_event('reports', 2, 'exported');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT record_history_event('reports', 1, 'update');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE TABLE untracked (id int PRIMARY KEY);
SELECT record_history_event('untracked', 1, 'exported');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT record_history_event('reports', 1, 'exported', '"text"');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

SELECT untrack_table('reports', drop_events => true);
SELECT untrack_table('lines', drop_events => true);
DROP TABLE reports, lines, untracked;
