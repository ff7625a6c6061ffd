-- Dropping: an event table cannot be dropped while its table is tracked;
-- dropping a tracked table forgets it and keeps its history.
\set SHOW_CONTEXT never
CREATE TABLE parcels (id int PRIMARY KEY, weight int);
SELECT track_table('parcels');
INSERT INTO parcels VALUES (1, 10), (2, 20);

DROP TABLE parcels_event;
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Dropping the tracked table removes its trackers and generated functions ...
DROP TABLE parcels;
SELECT count(*) AS trackers FROM history_trackers;
SELECT count(*) AS catalog_rows FROM history_track.tracked_table;
SELECT count(*) AS generated_functions FROM pg_proc
 WHERE pronamespace = 'history_track'::regnamespace AND proname ~ '^_t[0-9]+_';
-- ... and the history outlives the data.
SELECT pgh_operation, pgh_obj_id, weight FROM parcels_event ORDER BY pgh_id;
DROP TABLE parcels_event;

-- A schema dropped with everything in it.
CREATE SCHEMA depot;
CREATE TABLE depot.crates (id int PRIMARY KEY);
SELECT track_table('depot.crates');
DROP SCHEMA depot CASCADE;
SELECT count(*) AS catalog_rows FROM history_track.tracked_table;
