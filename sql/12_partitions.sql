-- Partitioned tables: track the partitioned table, and every partition is
-- recorded into its one event table — writes through the partitioned table
-- or straight into a partition, at any level, and partitions created or
-- attached later. A single partition cannot be tracked on its own.
\set SHOW_CONTEXT never
CREATE TABLE readings (sensor int, day date, value numeric, PRIMARY KEY (sensor, day)) PARTITION BY RANGE (day);
CREATE TABLE readings_2026_01 PARTITION OF readings FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
SELECT track_table('readings');
SELECT track_table('readings_2026_01');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A partition created later, itself partitioned.
CREATE TABLE readings_2026_02 PARTITION OF readings FOR VALUES FROM ('2026-02-01') TO ('2026-03-01')
    PARTITION BY LIST (sensor);
CREATE TABLE readings_2026_02_s1 PARTITION OF readings_2026_02 FOR VALUES IN (1);
CREATE TABLE readings_2026_02_other PARTITION OF readings_2026_02 DEFAULT;
-- A table with rows, attached: its rows enter the history as a baseline.
CREATE TABLE readings_2025_12 (LIKE readings);
INSERT INTO readings_2025_12 VALUES (1, '2025-12-31', 9.5);
ALTER TABLE readings ATTACH PARTITION readings_2025_12 FOR VALUES FROM ('2025-12-01') TO ('2026-01-01');
SELECT tgrelid::regclass AS relation, count(*) AS triggers FROM pg_trigger
 WHERE tgname LIKE 'history\_track\_%' AND tgrelid <> 'readings_event'::regclass GROUP BY 1 ORDER BY tgrelid::regclass::text;

INSERT INTO readings VALUES (1, '2026-01-10', 10), (2, '2026-02-10', 20);   -- through the parent
INSERT INTO readings_2026_02_s1 VALUES (1, '2026-02-11', 11);               -- straight into a partition
UPDATE readings SET day = '2026-02-10' WHERE sensor = 1 AND day = '2026-01-10';  -- moves to another partition
UPDATE readings_2026_02_other SET value = 21;
TRUNCATE readings_2026_02_s1;                                               -- recorded row by row
SELECT pgh_label, pgh_operation, pgh_obj_id, pgh_old_obj_id, sensor, day, value FROM readings_event ORDER BY pgh_id;
SELECT * FROM history_as_of(NULL::readings, now()) ORDER BY sensor, day;
SELECT * FROM readings ORDER BY sensor, day;

-- A detached partition takes its rows out of the table, and out of the replay.
ALTER TABLE readings DETACH PARTITION readings_2025_12;
SELECT pgh_label, pgh_operation, pgh_obj_id FROM readings_event ORDER BY pgh_id DESC LIMIT 1;
SELECT count(*) AS detached_triggers FROM pg_trigger
 WHERE tgrelid = 'readings_2025_12'::regclass AND tgname LIKE 'history\_track\_%';
SELECT * FROM history_as_of(NULL::readings, now()) ORDER BY sensor, day;

SELECT untrack_table('readings', drop_events => true);
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'history\_track\_%';
DROP TABLE readings, readings_2025_12;
