-- Reading history: an order's life (created, paid, repriced, shipped,
-- refunded), then its timeline with diffs, the table as it was, and reverts.
\set SHOW_CONTEXT never
CREATE TABLE shop_orders (id int PRIMARY KEY, customer text, status text, total numeric(8,2), lines jsonb);
-- A row that exists before tracking: baseline => true records it, so the
-- replay is complete from the moment tracking begins.
INSERT INTO shop_orders VALUES (7, 'bob', 'archived', 5, '[]');
SELECT track_table('shop_orders', baseline => true);

BEGIN;
SELECT set_history_context('{"user": "alice", "url": "/checkout"}') IS NOT NULL AS context_set;
INSERT INTO shop_orders VALUES (1, 'alice', 'new', 30.00, '[{"sku": "tea", "qty": 2}]');
COMMIT;
SELECT clock_timestamp() AS created \gset
BEGIN;
SELECT set_history_context('{"user": "psp", "url": "/webhook"}') IS NOT NULL AS context_set;
UPDATE shop_orders SET status = 'paid' WHERE id = 1;
COMMIT;
SELECT clock_timestamp() AS paid \gset
UPDATE shop_orders SET total = 27.00 WHERE id = 1;           -- repriced (no context)
UPDATE shop_orders SET status = 'shipped' WHERE id = 1;
UPDATE shop_orders SET status = status WHERE id = 1;         -- no change: no event
SELECT clock_timestamp() AS shipped \gset
UPDATE shop_orders SET status = 'refunded', total = 0 WHERE id = 1;
DELETE FROM shop_orders WHERE id = 7;

-- One order's timeline, oldest first: what changed, and who did it.
SELECT pgh_label, pgh_operation, pgh_obj_id, pgh_context ->> 'user' AS "user", diff
  FROM history_events('shop_orders', key => '1');

-- The first event's diff shows the initial values; data is the whole row.
SELECT data FROM history_events('shop_orders', key => '1') LIMIT 1;

-- Every event of the table, and of one context.
SELECT pgh_label, pgh_operation, pgh_obj_id FROM history_events('shop_orders');
SELECT count(*) AS events_since_paid FROM history_events('shop_orders', since => :'paid');
SELECT table_name, pgh_operation, pgh_context, diff
  FROM history_events(context_id => (SELECT pgh_context_id FROM shop_orders_event WHERE pgh_context ->> 'user' = 'psp'));

-- The table as it was.
SELECT * FROM history_as_of(NULL::shop_orders, :'created') ORDER BY id;
SELECT * FROM history_as_of(NULL::shop_orders, :'shipped') ORDER BY id;
SELECT * FROM history_as_of(NULL::shop_orders, now()) ORDER BY id;
-- Before tracking began there is no history (the baseline is the start).
SELECT count(*) AS rows_before_tracking FROM history_as_of(NULL::shop_orders, '2000-01-01');
-- One row, by key.
SELECT id, status, total FROM history_as_of(NULL::shop_orders, :'paid', key => '1');

-- A key that changes is followed: the order renumbered keeps its timeline.
UPDATE shop_orders SET id = 100 WHERE id = 1;
SELECT pgh_operation, pgh_obj_id, diff FROM history_events('shop_orders', key => '100');
SELECT id FROM history_as_of(NULL::shop_orders, now());

-- Revert one row to a moment: it is rewritten, recorded with label revert.
SELECT revert_row('shop_orders', 100, :'shipped') AS rows_written;   -- key 100 had no row then: deleted
SELECT revert_row('shop_orders', 1, :'shipped') AS rows_written;     -- key 1 comes back as it was
SELECT * FROM shop_orders ORDER BY id;
SELECT pgh_label, pgh_operation, pgh_obj_id, diff FROM history_events('shop_orders', key => '1') WHERE pgh_label = 'revert';

-- Revert a whole table to a moment; the revert is itself history, so it can
-- be undone with another revert.
SELECT clock_timestamp() AS before_revert \gset
SELECT revert_table('shop_orders', :'created') AS rows_written;
SELECT * FROM shop_orders ORDER BY id;
SELECT revert_table('shop_orders', :'before_revert') AS rows_written;
SELECT * FROM shop_orders ORDER BY id;

-- Revert to the state an event recorded (its pgh_id).
SELECT revert_row('shop_orders', (SELECT pgh_id FROM shop_orders_event WHERE pgh_obj_id = 7 AND pgh_operation = 'BASELINE')) AS rows_written;
SELECT * FROM shop_orders WHERE id = 7;

-- Refused, with what to do instead.
CREATE TABLE secrets (id int PRIMARY KEY, name text, token text);
SELECT track_table('secrets', exclude => '{token}');
SELECT revert_table('secrets', now());
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Replay needs the default trackers.
CREATE TABLE flags (id int PRIMARY KEY, on_ boolean);
SELECT track_table('flags', label => 'flipped', operations => '{update}');
SELECT * FROM history_as_of(NULL::flags, now());
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('flags', label => 'x', operations => '{update}', baseline => true);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM history_as_of(42, now());
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM history_events(key => '1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT revert_row('shop_orders', -1::bigint);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('shop_orders', label => 'revert');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- history_track.label, which the revert functions set, takes no other value:
-- ordinary writes cannot be passed off under another label.
SET history_track.label = 'imported';
UPDATE shop_orders SET status = 'x';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET history_track.label;

SELECT untrack_table(t, drop_events => true) FROM unnest('{shop_orders,secrets,flags}'::regclass[]) AS t;
DROP TABLE shop_orders, secrets, flags;
