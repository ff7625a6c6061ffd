-- The core: SELECT track_table('orders') creates orders_event and the default
-- trackers (insert, update when a tracked column changed, delete).
\set SHOW_CONTEXT never
CREATE TABLE orders (
    id     integer PRIMARY KEY,
    item   text NOT NULL,
    amount numeric(10,2),
    status text NOT NULL DEFAULT 'new'
);
INSERT INTO orders VALUES (100, 'before tracking', 1, 'new');

SELECT track_table('orders');
\d orders_event
SELECT * FROM history_trackers;

-- Inserts, updates and deletes, single and multi-row.
INSERT INTO orders (id, item, amount) VALUES (1, 'teapot', 25.00), (2, 'cups', 12.50);
UPDATE orders SET status = 'paid' WHERE id = 1;
-- Nothing changed: nothing is recorded.
UPDATE orders SET status = status;
UPDATE orders SET amount = amount WHERE id = 2;
-- 12.5 is stored as 12.50 in a numeric(10,2): nothing changed.
UPDATE orders SET amount = 12.5 WHERE id = 2;
DELETE FROM orders WHERE id = 2;
-- Work that is rolled back leaves no events.
BEGIN;
INSERT INTO orders (id, item) VALUES (3, 'rolled back');
UPDATE orders SET status = 'void' WHERE id = 1;
ROLLBACK;
-- A subtransaction rolled back to its savepoint leaves none either.
BEGIN;
INSERT INTO orders (id, item) VALUES (4, 'kept');
SAVEPOINT s;
UPDATE orders SET status = 'lost' WHERE id = 4;
ROLLBACK TO SAVEPOINT s;
COMMIT;

SELECT pgh_id, pgh_label, pgh_operation, pgh_obj_id, pgh_context_id, pgh_context,
       id, item, amount, status
  FROM orders_event ORDER BY pgh_id;
-- pgh_created_at is the writing transaction's time.
SELECT count(*) FILTER (WHERE pgh_created_at <= now()) = count(*) AS all_in_the_past FROM orders_event;

-- Calling track_table again is harmless.
SELECT track_table('orders');
SELECT count(*) AS trackers FROM history_trackers WHERE table_name = 'orders'::regclass;

-- Updates that change the primary key, several rows at once: each event
-- carries the row's new key.
INSERT INTO orders (id, item) VALUES (10, 'a'), (11, 'b');
UPDATE orders SET id = id + 100, item = upper(item) WHERE id IN (10, 11);
SELECT pgh_operation, pgh_obj_id, id, item FROM orders_event WHERE pgh_id > 6 ORDER BY pgh_id;

-- Upserts: the insert and the update are both recorded.
INSERT INTO orders (id, item) VALUES (1, 'teapot'), (5, 'saucer')
    ON CONFLICT (id) DO UPDATE SET status = 'reordered';
SELECT pgh_operation, pgh_obj_id, status FROM orders_event WHERE pgh_id > 10 ORDER BY pgh_id;

-- untrack_table stops recording and keeps the events.
SELECT untrack_table('orders');
INSERT INTO orders (id, item) VALUES (6, 'not recorded');
SELECT count(*) AS events_kept FROM orders_event;
SELECT count(*) AS trackers FROM history_trackers;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'orders'::regclass;

-- Tracking again appends to the same event table.
SELECT track_table('orders');
UPDATE orders SET status = 'shipped' WHERE id = 6;
SELECT pgh_id, pgh_operation, pgh_obj_id, status FROM orders_event ORDER BY pgh_id DESC LIMIT 1;

-- drop_events => true removes the history too.
SELECT untrack_table('orders', drop_events => true);
SELECT to_regclass('orders_event') AS event_table;
SELECT count(*) AS generated_functions FROM pg_proc WHERE pronamespace = 'history_track'::regnamespace AND proname ~ '^_t[0-9]+_';
-- Untracking an untracked table only says so.
SELECT untrack_table('orders');
DROP TABLE orders;
