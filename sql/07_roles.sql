-- Privileges: the table's owner tracks it; an application role with DML only
-- writes the table and its history is recorded, though it cannot touch the
-- event table.
\set SHOW_CONTEXT never
CREATE ROLE ht_owner;
CREATE ROLE ht_app;
CREATE ROLE ht_other;
CREATE SCHEMA ht_shop AUTHORIZATION ht_owner;
GRANT USAGE ON SCHEMA ht_shop TO ht_app, ht_other;

SET ROLE ht_owner;
CREATE TABLE ht_shop.carts (id int PRIMARY KEY, items int NOT NULL DEFAULT 0);
GRANT SELECT, INSERT, UPDATE, DELETE ON ht_shop.carts TO ht_app;
RESET ROLE;

-- Another role may not track (or untrack) the owner's table.
SET ROLE ht_other;
SELECT track_table('ht_shop.carts');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;

SET ROLE ht_owner;
SELECT track_table('ht_shop.carts');
-- The owner reads the history ...
SELECT relname, pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'ht_shop.carts_event'::regclass;
RESET ROLE;

-- ... the application writes the table ...
SET ROLE ht_app;
INSERT INTO ht_shop.carts VALUES (1, 2);
UPDATE ht_shop.carts SET items = 3;
DELETE FROM ht_shop.carts;
-- ... but not the history.
SELECT count(*) FROM ht_shop.carts_event;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
INSERT INTO ht_shop.carts_event (pgh_created_at, pgh_label, pgh_operation, pgh_obj_id, id)
VALUES (now(), 'forged', 'INSERT', 9, 9);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT untrack_table('ht_shop.carts');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;

SET ROLE ht_owner;
SELECT pgh_label, pgh_operation, pgh_obj_id, items FROM ht_shop.carts_event ORDER BY pgh_id;
SELECT untrack_table('ht_shop.carts', drop_events => true);
DROP TABLE ht_shop.carts;
RESET ROLE;
DROP SCHEMA ht_shop;
DROP ROLE ht_owner, ht_app, ht_other;
