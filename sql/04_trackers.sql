-- Trackers: named, conditional events; which row is stored; which columns are
-- mirrored; removing one tracker.
\set SHOW_CONTEXT never
CREATE TABLE invoices (
    id      integer PRIMARY KEY,
    status  text NOT NULL DEFAULT 'draft',
    amount  numeric NOT NULL,
    note    text,
    secret  text
);

-- The default trackers, but without the secret column.
SELECT track_table('invoices', exclude => '{secret}');
-- "paid": an update where the status became 'paid'.
SELECT track_table('invoices', label => 'paid', operations => '{update}',
                   condition => 'OLD.status IS DISTINCT FROM NEW.status AND NEW.status = ''paid''');
-- "repriced": an update where amount changed, storing the row as it was before.
SELECT track_table('invoices', label => 'repriced', changed => '{amount}', operations => '{update}',
                   snapshot => 'old');
-- changed is about updates: without operations, a tracker watching columns
-- records updates only (and snapshot => 'old' updates and deletes).
SELECT track_table('invoices', label => 'noted', changed => '{note}');
SELECT label, operations, snapshot, changed FROM history_trackers WHERE label = 'noted';
SELECT untrack_table('invoices', label => 'noted');
-- "big": any write of a large invoice (OLD is NULL for inserts, NEW for deletes).
SELECT track_table('invoices', label => 'big', condition => 'COALESCE(NEW.amount, OLD.amount) >= 1000');
SELECT * FROM history_trackers WHERE table_name = 'invoices'::regclass;

INSERT INTO invoices (id, amount, secret) VALUES (1, 100, 's1'), (2, 5000, 's2');
UPDATE invoices SET note = 'checked' WHERE id = 1;
UPDATE invoices SET status = 'paid' WHERE id = 1;
UPDATE invoices SET status = 'paid' WHERE id = 1;
UPDATE invoices SET amount = 120 WHERE id = 1;
-- Only the excluded column changed: the default update tracker writes nothing.
UPDATE invoices SET secret = 'rotated';
DELETE FROM invoices WHERE id = 2;
SELECT pgh_label, pgh_operation, pgh_obj_id, status, amount, note FROM invoices_event ORDER BY pgh_id;
SELECT attname FROM pg_attribute WHERE attrelid = 'invoices_event'::regclass AND attname = 'secret';

-- Declaring the same tracker again is harmless; redefining it is refused.
SELECT track_table('invoices', label => 'paid', operations => '{update}',
                   condition => 'OLD.status IS DISTINCT FROM NEW.status AND NEW.status = ''paid''');
SELECT track_table('invoices', label => 'paid', operations => '{update}', condition => 'NEW.status = ''paid''');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A different column choice is refused once the event table exists.
SELECT track_table('invoices', columns => '{id,status}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Removing one tracker.
SELECT untrack_table('invoices', label => 'big');
SELECT label FROM history_trackers WHERE table_name = 'invoices'::regclass;
SELECT untrack_table('invoices', label => 'big');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT untrack_table('invoices', label => 'paid', drop_events => true);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Without its default update tracker, only labeled updates are recorded.
SELECT untrack_table('invoices', label => 'update');
INSERT INTO invoices (id, amount) VALUES (3, 1);
UPDATE invoices SET status = 'paid', note = 'late' WHERE id = 3;
SELECT pgh_label, pgh_operation, pgh_obj_id, status, note FROM invoices_event WHERE pgh_obj_id = 3 ORDER BY pgh_id;

-- A labeled tracker on a table not yet tracked: the event table gets only it.
CREATE TABLE shipments (id int PRIMARY KEY, state text, carrier text);
SELECT track_table('shipments', label => 'delivered', operations => '{update}',
                   condition => 'NEW.state = ''delivered''', columns => '{id,state}');
INSERT INTO shipments VALUES (1, 'packed', 'ups');
UPDATE shipments SET state = 'delivered';
SELECT pgh_label, pgh_operation, pgh_obj_id, id, state FROM shipments_event ORDER BY pgh_id;
SELECT attname FROM pg_attribute WHERE attrelid = 'shipments_event'::regclass AND attnum > 0 ORDER BY attnum;

SELECT untrack_table('invoices', drop_events => true);
SELECT untrack_table('shipments', drop_events => true);
DROP TABLE invoices, shipments;
