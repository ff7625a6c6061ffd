-- The tour of README.md ("Five minutes with it"), block by block: paste each
-- block into the psql that `history-track sandbox` opens (history_track is
-- created there; in a database of your own, CREATE EXTENSION history_track
-- first), or run it whole: psql -X -a -f doc/tour.sql "<dsn>".
-- tests/test_tour.py runs this file verbatim and compares the transcript with
-- doc/tour.out; `python3 tools/tour.py --update` regenerates that file and the
-- outputs README.md shows. Blocks are separated by blank lines.

CREATE TABLE orders (id int PRIMARY KEY, item text NOT NULL, amount numeric(10,2) NOT NULL,
                     status text NOT NULL DEFAULT 'new');
SELECT track_table('orders');               -- an event table, and trackers for insert, update, delete
SELECT track_table('orders', label => 'paid', operations => '{update}',
                   condition => 'OLD.status <> ''paid'' AND NEW.status = ''paid''');
SELECT label, operations, condition FROM history_trackers;

BEGIN;
SELECT set_history_context('{"user": "alice", "request": "POST /orders"}') AS request \gset
INSERT INTO orders (id, item, amount) VALUES (1, 'teapot', 25.00), (2, 'cups', 12.50);
COMMIT;
SELECT now() AS before_payment \gset
BEGIN;
SET LOCAL history_track.context = '{"user": "bob", "request": "POST /orders/1/pay"}';  -- the same, for any client
UPDATE orders SET status = 'paid' WHERE id = 1;
COMMIT;
UPDATE orders SET amount = 10.00 WHERE id = 2;  -- no context: a psql session, a cron job ...
UPDATE orders SET status = status;              -- nothing changed: nothing recorded

SELECT pgh_id, pgh_label, pgh_operation, pgh_obj_id, pgh_context ->> 'user' AS "user", status, amount
  FROM orders_event ORDER BY pgh_id;

SELECT pgh_label, pgh_context ->> 'request' AS request, diff FROM history_events('orders', key => '2');

SELECT * FROM history_as_of(NULL::orders, :'before_payment');

SELECT table_name, pgh_operation, pgh_obj_id FROM history_events(context_id => :'request');

SELECT revert_row('orders', 2, :'before_payment');   -- undo: order 2 as it was, recorded as 'revert'
SELECT record_history_event('orders', 2, 'emailed', '{"to": "customer"}');  -- what no DML shows
SELECT pgh_label, pgh_operation, amount, pgh_context FROM orders_event WHERE pgh_obj_id = 2 ORDER BY pgh_id;
