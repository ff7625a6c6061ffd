-- What cannot be tracked is refused at track_table time with a SQLSTATE, a
-- DETAIL and a HINT, and nothing is left behind.
\set SHOW_CONTEXT never
\set VERBOSITY default

CREATE TABLE no_key (a int, b text);
SELECT track_table('no_key');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

CREATE VIEW a_view AS SELECT 1 AS id;
SELECT track_table('a_view');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

CREATE MATERIALIZED VIEW a_matview AS SELECT 1 AS id;
SELECT track_table('a_matview');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (10);
SELECT track_table('parted_1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

CREATE TEMPORARY TABLE temp_t (id int PRIMARY KEY);
SELECT track_table('temp_t');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

SELECT track_table('does_not_exist');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

SELECT track_table(NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE

CREATE TABLE reserved (id int PRIMARY KEY, pgh_id int, pgh_label text);
SELECT track_table('reserved');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The event table's name is taken by a table history_track did not create.
CREATE TABLE clash (id int PRIMARY KEY);
CREATE TABLE clash_event (x int);
SELECT track_table('clash');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A trigger of the same name that is not ours.
CREATE TABLE own_trigger (id int PRIMARY KEY);
CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER history_track_insert AFTER INSERT ON own_trigger EXECUTE FUNCTION noop();
SELECT track_table('own_trigger');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- An event table cannot itself be tracked.
CREATE TABLE tracked (id int PRIMARY KEY);
SELECT track_table('tracked');
SELECT track_table('tracked_event');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT untrack_table('tracked', drop_events => true);

-- Nothing was left behind by the refused calls.
SELECT count(*) AS catalog_rows FROM history_track.tracked_table;
SELECT relname FROM pg_class WHERE relname LIKE '%\_event' ORDER BY 1;
SELECT count(*) AS generated_functions FROM pg_proc
 WHERE pronamespace = 'history_track'::regnamespace AND proname ~ '^_t[0-9]+_';
SELECT tgrelid::regclass, tgname FROM pg_trigger WHERE tgname LIKE 'history\_track%' ORDER BY 1, 2;

DROP TABLE no_key, parted, reserved, clash, clash_event, own_trigger, tracked;
DROP VIEW a_view;
DROP MATERIALIZED VIEW a_matview;
DROP FUNCTION noop();
