-- Context: metadata from the application attached to every event of a transaction.
\set SHOW_CONTEXT never
CREATE TABLE notes (id int PRIMARY KEY, body text);
SELECT track_table('notes');

-- With set_history_context(): calls merge (later keys win) and return the
-- transaction's context id.
BEGIN;
SELECT set_history_context('{"user": "alice", "request": "POST /notes"}') AS first_id \gset
INSERT INTO notes VALUES (1, 'hello');
SELECT set_history_context('{"request": "PATCH /notes/1", "reason": "typo"}') = :'first_id'::uuid AS same_id;
UPDATE notes SET body = 'hello!' WHERE id = 1;
COMMIT;

-- With the setting alone, as any client or pooler can do it.
BEGIN;
SELECT set_config('history_track.context', '{"user": "bob", "job": 42}', true);
INSERT INTO notes VALUES (2, 'from a job');
COMMIT;

-- The context ended with its transaction: no context, NULL in both columns.
INSERT INTO notes VALUES (3, 'no context');

SELECT pgh_id, pgh_operation, pgh_obj_id, pgh_context, pgh_context_id = :'first_id'::uuid AS first_tx,
       pgh_context_id IS NULL AS no_id
  FROM notes_event ORDER BY pgh_id;
-- One id per transaction.
SELECT count(DISTINCT pgh_context_id) AS context_ids FROM notes_event;

-- All events of one context, across every event table the caller may read.
CREATE TABLE tags (id int PRIMARY KEY, note int REFERENCES notes);
SELECT track_table('tags');
BEGIN;
SELECT set_history_context('{"user": "carol"}') AS carol \gset
INSERT INTO notes VALUES (5, 'tagged');
INSERT INTO tags VALUES (1, 5);
UPDATE notes SET body = 'tagged!' WHERE id = 5;
COMMIT;
SELECT table_name, event_table, pgh_label, pgh_operation, pgh_obj_id, pgh_context, data
  FROM history_context_events(:'carol');
SELECT count(*) AS events_of_first_context FROM history_context_events(:'first_id');

-- Malformed context is refused where it is given ...
SELECT set_history_context('[1, 2]');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT set_history_context(NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... and a malformed setting fails the write rather than record it without context.
BEGIN;
SELECT set_config('history_track.context', '"just a string"', true);
INSERT INTO notes VALUES (4, 'refused');
ROLLBACK;
SELECT count(*) AS note_4 FROM notes WHERE id = 4;

SELECT untrack_table('tags', drop_events => true);
SELECT untrack_table('notes', drop_events => true);
DROP TABLE tags, notes;
