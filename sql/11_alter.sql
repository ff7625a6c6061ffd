-- Altering a tracked table: history_track follows ALTER TABLE, and refuses
-- (rolling the whole ALTER TABLE back) what would lose recorded history.
\set SHOW_CONTEXT never
CREATE TABLE parcels (id int PRIMARY KEY, status text, weight numeric(6,2), note text);
SELECT track_table('parcels');
SELECT track_table('parcels', label => 'delivered', operations => '{update}',
                   condition => $$OLD.status IS DISTINCT FROM NEW.status AND NEW.status = 'delivered'$$);
INSERT INTO parcels VALUES (1, 'new', 1.50, 'fragile');

-- ADD COLUMN: the event table gains it, and new events record it.
ALTER TABLE parcels ADD COLUMN carrier text DEFAULT 'post';
UPDATE parcels SET carrier = 'courier';

-- RENAME COLUMN: the event table's column is renamed with it; the condition
-- follows the new name.
ALTER TABLE parcels RENAME COLUMN status TO state;
SELECT label, condition FROM history_trackers WHERE label = 'delivered';
UPDATE parcels SET state = 'delivered';

-- DROP COLUMN: the event table keeps the column and what it recorded; new
-- events store NULL there.
ALTER TABLE parcels DROP COLUMN note;
UPDATE parcels SET weight = 1.75;

-- ALTER COLUMN ... TYPE: the event table's column follows when every recorded
-- value survives the conversion.
ALTER TABLE parcels ALTER COLUMN weight TYPE numeric(10,3);
ALTER TABLE parcels ALTER COLUMN id TYPE bigint;   -- the key: pgh_obj_id follows
-- A column a condition uses, too, when the condition still fits the new type.
ALTER TABLE parcels ALTER COLUMN state TYPE varchar(40);

-- RENAME TO and SET SCHEMA: tracking goes on; the event table keeps its name.
ALTER TABLE parcels RENAME TO shipments;
CREATE SCHEMA logistics;
ALTER TABLE shipments SET SCHEMA logistics;
UPDATE logistics.shipments SET carrier = 'drone';
SELECT table_name, event_table, label FROM history_trackers ORDER BY label;

SELECT pgh_label, pgh_operation, pgh_obj_id, state, weight, note, carrier FROM parcels_event ORDER BY pgh_id;
SELECT column_name, data_type FROM information_schema.columns
 WHERE table_name = 'parcels_event' AND column_name IN ('pgh_obj_id', 'state', 'weight', 'note', 'carrier')
 ORDER BY ordinal_position;
SELECT * FROM history_as_of(NULL::logistics.shipments, now());

-- Refused, and nothing changes:
-- a column the condition uses ...
ALTER TABLE logistics.shipments DROP COLUMN state;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... a type that would change recorded values ...
ALTER TABLE logistics.shipments ALTER COLUMN weight TYPE int USING round(weight);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TABLE logistics.shipments ALTER COLUMN carrier DROP DEFAULT, ALTER COLUMN carrier TYPE int USING length(carrier);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... the primary key ...
ALTER TABLE logistics.shipments DROP CONSTRAINT parcels_pkey;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... a name the event table keeps for a dropped column's history ...
ALTER TABLE logistics.shipments RENAME COLUMN carrier TO note;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- ... a column a tracker's changed list watches.
SELECT track_table('logistics.shipments', label => 'reweighed', operations => '{update}', changed => '{weight}');
ALTER TABLE logistics.shipments DROP COLUMN weight;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
 WHERE attrelid = 'logistics.shipments'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;

-- Without the tracker, the drop goes through.
SELECT untrack_table('logistics.shipments', label => 'reweighed');
SELECT untrack_table('logistics.shipments', label => 'delivered');
ALTER TABLE logistics.shipments DROP COLUMN weight, DROP COLUMN state;
INSERT INTO logistics.shipments VALUES (2, 'van');
SELECT pgh_label, pgh_operation, pgh_obj_id, state, weight, carrier FROM parcels_event WHERE pgh_obj_id = 2;

SELECT untrack_table('logistics.shipments', drop_events => true);
DROP SCHEMA logistics CASCADE;
