-- Any table a user has: other schemas, hostile names, 63-byte names, composite
-- keys and the common column types.
\set SHOW_CONTEXT never

-- A non-public schema and a mixed-case name with spaces: the event table is
-- created next to the table, names quoted.
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Order Lines" (
    "Order ID" bigint,
    "Line"     smallint,
    "SKU"      text NOT NULL,
    PRIMARY KEY ("Order ID", "Line")
);
SELECT track_table('"Sales Dept"."Order Lines"');
INSERT INTO "Sales Dept"."Order Lines" VALUES (7, 1, 'TEA-1'), (7, 2, 'CUP-2');
UPDATE "Sales Dept"."Order Lines" SET "Line" = 3 WHERE "Line" = 2;
-- A composite key is recorded as a JSON array of its values in key order.
SELECT pgh_operation, pgh_obj_id, pg_typeof(pgh_obj_id), "Order ID", "Line", "SKU"
  FROM "Sales Dept"."Order Lines_event" ORDER BY pgh_id;

-- Names of 63 bytes: <table>_event would be too long, so the table name is cut
-- and an 8-digit md5 of the full name keeps two such names apart.
CREATE TABLE a_table_name_that_is_exactly_sixty_three_bytes_long_xxxxxxxxxxx (id int PRIMARY KEY);
CREATE TABLE a_table_name_that_is_exactly_sixty_three_bytes_long_yyyyyyyyyyy (id int PRIMARY KEY);
SELECT track_table('a_table_name_that_is_exactly_sixty_three_bytes_long_xxxxxxxxxxx') AS event_x \gset
SELECT :'event_x' AS event_table, octet_length(:'event_x') AS bytes,
       left(md5('a_table_name_that_is_exactly_sixty_three_bytes_long_xxxxxxxxxxx'), 8) AS md5_prefix;
SELECT track_table('a_table_name_that_is_exactly_sixty_three_bytes_long_yyyyyyyyyyy') AS event_table;
INSERT INTO a_table_name_that_is_exactly_sixty_three_bytes_long_xxxxxxxxxxx VALUES (1);
SELECT pgh_operation, id FROM :event_x;
-- Multi-byte names are cut on a character boundary.
CREATE TABLE "ééééééééééééééééééééééééééééééé" (id int PRIMARY KEY);
SELECT track_table('"ééééééééééééééééééééééééééééééé"') AS event_table;

-- Column types: their own names and types in the event table.
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE things (
    id        uuid PRIMARY KEY,
    price     numeric(12,4),
    seen_at   timestamptz,
    tags      text[],
    doc       jsonb,
    raw       json,
    spot      point,
    feeling   mood,
    qty       positive_int,
    total     numeric GENERATED ALWAYS AS (price * qty) STORED,
    label     text COLLATE "C"
);
SELECT track_table('things');
SELECT attname, format_type(atttypid, atttypmod) AS type, attcollation::regcollation AS collation
  FROM pg_attribute
 WHERE attrelid = 'things_event'::regclass AND attnum > 0 AND NOT attisdropped
 ORDER BY attnum;
INSERT INTO things VALUES ('00000000-0000-0000-0000-000000000001', 1.5, '2026-01-02 03:04:05+00',
                           '{a,"b c",NULL}', '{"k": [1, null]}', '{"k": 1}', '(1,2)', 'ok', 3, DEFAULT, 'x');
-- json and point have no equality operator; updates still see whether they changed.
UPDATE things SET raw = '{"k": 1}', spot = '(1,2)';
UPDATE things SET raw = '{"k":1}';
UPDATE things SET spot = '(2,1)', feeling = 'happy', tags = tags || 'd'::text, doc = NULL;
SELECT pgh_operation, pgh_obj_id, price, seen_at AT TIME ZONE 'UTC' AS seen_at_utc, tags, doc, raw, spot,
       feeling, qty, total, label
  FROM things_event ORDER BY pgh_id;

-- Clean up: drop_events removes every event table.
SELECT untrack_table(table_name, drop_events => true)
  FROM (SELECT DISTINCT table_name FROM history_trackers) AS t;
SELECT count(*) AS event_tables_left FROM history_track.tracked_table;
DROP TABLE "Sales Dept"."Order Lines", things,
           a_table_name_that_is_exactly_sixty_three_bytes_long_xxxxxxxxxxx,
           a_table_name_that_is_exactly_sixty_three_bytes_long_yyyyyyyyyyy,
           "ééééééééééééééééééééééééééééééé";
DROP SCHEMA "Sales Dept";
DROP TYPE mood;
DROP DOMAIN positive_int;
