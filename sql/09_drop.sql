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

-- TRUNCATE runs the delete trackers before the rows are gone: every row is
-- recorded, as with DELETE, with pgh_operation TRUNCATE.
CREATE TABLE pallets (id int PRIMARY KEY, spot text);
SELECT track_table('pallets');
SELECT track_table('pallets', label => 'cleared_a', operations => '{delete}', condition => 'OLD.spot = ''A''');
INSERT INTO pallets VALUES (1, 'A'), (2, 'B');
TRUNCATE pallets;
SELECT pgh_label, pgh_operation, pgh_obj_id, spot FROM pallets_event WHERE pgh_operation <> 'INSERT' ORDER BY pgh_id;
-- Without a delete tracker nothing is recorded, as for DELETE.
SELECT untrack_table('pallets', label => 'delete');
SELECT untrack_table('pallets', label => 'cleared_a');
INSERT INTO pallets VALUES (3, 'C');
TRUNCATE pallets;
SELECT count(*) AS truncate_events FROM pallets_event WHERE pgh_obj_id = 3 AND pgh_operation = 'TRUNCATE';
SELECT tgname FROM pg_trigger WHERE tgrelid = 'pallets'::regclass ORDER BY 1;
SELECT untrack_table('pallets', drop_events => true);
DROP TABLE pallets;
