-- History that cannot be rewritten: event tables are append-only, for their
-- owner too; the triggers of a tracked table stay; prune_history() is the one
-- way to remove old history, and it is logged.
\set SHOW_CONTEXT never
CREATE TABLE ledger (id int PRIMARY KEY, amount numeric);
SELECT track_table('ledger');
BEGIN;
INSERT INTO ledger VALUES (1, 10), (2, 20);
COMMIT;
UPDATE ledger SET amount = 11 WHERE id = 1;

-- Even the event table's owner (here a superuser) cannot rewrite it.
UPDATE ledger_event SET amount = 0;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DELETE FROM ledger_event;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
TRUNCATE ledger_event;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Only untrack_table(..., drop_events => true) drops it.
DROP TABLE ledger_event;
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The recording triggers stay while the table is tracked.
ALTER TABLE ledger DISABLE TRIGGER history_track_update;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TABLE ledger DISABLE TRIGGER USER;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TABLE ledger ENABLE REPLICA TRIGGER history_track_insert;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP TRIGGER history_track_delete ON ledger;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'ledger'::regclass ORDER BY 1;
-- history_track.pruning is what prune_history() sets for itself; setting it
-- by hand opens nothing to anyone who may not write the event table anyway.

-- Retention: events before a moment go, except each row's state then.
SELECT clock_timestamp() AS cut \gset
UPDATE ledger SET amount = 12 WHERE id = 1;
INSERT INTO ledger VALUES (3, 30);
SELECT * FROM history_as_of(NULL::ledger, now()) ORDER BY id;
SELECT prune_history('ledger', :'cut') AS events_deleted;
SELECT pgh_operation, pgh_obj_id, amount FROM ledger_event ORDER BY pgh_id;
SELECT * FROM history_as_of(NULL::ledger, now()) ORDER BY id;
SELECT table_name, event_table, events_deleted, pruned_by = current_user AS by_me, before = :'cut' AS at_cut
  FROM history_track.prune_log WHERE action = 'prune';
SELECT prune_history('ledger', now() + interval '1 day');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Tamper evidence: a hash chain over the events written from now on.
SELECT start_hash_chain('ledger');
INSERT INTO ledger VALUES (4, 40), (5, 50);
UPDATE ledger SET amount = amount + 1;
SELECT verified, first_broken_link, pgh_id, problem, last_hash IS NOT NULL AS has_last_hash
  FROM verify_history('ledger');
-- A superuser can get past the guard; the chain shows where history was rewritten.
ALTER TABLE ledger_event DISABLE TRIGGER history_track_append_only;
UPDATE ledger_event SET amount = 1000 WHERE pgh_operation = 'INSERT' AND pgh_obj_id = 5;
ALTER TABLE ledger_event ENABLE TRIGGER history_track_append_only;
SELECT verified, first_broken_link, problem FROM verify_history('ledger');

-- Untracked, the triggers go; the history stays, still append-only.
SELECT untrack_table('ledger');
DELETE FROM ledger_event;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT untrack_table('ledger', drop_events => true);
DROP TABLE ledger;
