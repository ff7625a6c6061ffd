-- The catalog: which tables have an event table, and which trackers write to it.
--
-- A row of tracked_table exists as long as the event table does: untracking a
-- table (without drop_events) removes its trackers but keeps this row, so the
-- history stays known and a later track_table() appends to the same event table.
-- Catalog references are regclass, so renames and pg_dump keep working.

CREATE SEQUENCE history_track.tracked_table_id_seq AS integer;

CREATE TABLE history_track.tracked_table (
    table_name  regclass    NOT NULL PRIMARY KEY,
    event_table regclass    NOT NULL UNIQUE,
    -- Stable short id used to name the generated trigger functions.
    table_id    integer     NOT NULL UNIQUE
                            DEFAULT pg_catalog.nextval('history_track.tracked_table_id_seq'),
    -- Mirrored columns: NULL means every column of the table, minus exclude.
    columns     name[],
    exclude     name[]      NOT NULL DEFAULT '{}',
    tracked_by  name        NOT NULL,
    tracked_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
ALTER SEQUENCE history_track.tracked_table_id_seq OWNED BY history_track.tracked_table.table_id;

COMMENT ON TABLE history_track.tracked_table IS
    'One row per table with an event table (tracked now, or tracked before and its history kept)';

CREATE TABLE history_track.tracker (
    table_name regclass NOT NULL
               REFERENCES history_track.tracked_table (table_name) ON DELETE CASCADE,
    label      text     NOT NULL CHECK (label <> ''),
    operations text[]   NOT NULL
               CHECK (operations <@ '{insert,update,delete}' AND pg_catalog.cardinality(operations) > 0),
    -- SQL boolean expression over OLD and NEW, as the user wrote it.
    condition  text,
    -- For updates: record only when one of these columns changed;
    -- NULL means any mirrored column.
    changed    name[],
    -- 'old' or 'new': which row an event stores; NULL: new for insert and
    -- update, old for delete.
    snapshot   text     CHECK (snapshot IN ('old', 'new')),
    created_by name     NOT NULL,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (table_name, label)
);

COMMENT ON TABLE history_track.tracker IS
    'One row per tracker: a label, the operations it fires on, its condition and the row it stores';

-- Every prune_history() call: who removed which events, when.
CREATE TABLE history_track.prune_log (
    table_name     regclass    NOT NULL,
    event_table    regclass    NOT NULL,
    before         timestamptz NOT NULL,
    events_deleted bigint      NOT NULL,
    pruned_by      name        NOT NULL,
    pruned_at      timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE history_track.prune_log IS
    'One row per prune_history() call: the table, the moment before which events were deleted, how many, by whom, when';

-- Hash chains (start_hash_chain): one row per chained event table, holding
-- the chain's last link; and one link per event, in chain order. Each link's
-- hash covers its event's row and the previous link's hash.
CREATE TABLE history_track.chain (
    event_table regclass    NOT NULL PRIMARY KEY,
    genesis     bytea       NOT NULL,            -- the hash before the first link
    seq         bigint      NOT NULL DEFAULT 0,  -- the last link
    hash        bytea       NOT NULL,
    anchor_seq  bigint      NOT NULL DEFAULT 0,  -- links up to here were pruned
    anchor_hash bytea       NOT NULL,
    after_id    bigint      NOT NULL,            -- the last pgh_id before the chain began
    started_by  name        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE TABLE history_track.chain_link (
    event_table regclass NOT NULL,
    seq         bigint   NOT NULL,
    pgh_id      bigint   NOT NULL,
    hash        bytea    NOT NULL,
    PRIMARY KEY (event_table, seq)
);

COMMENT ON TABLE history_track.chain IS
    'One row per event table with a hash chain: its genesis, last link and pruning anchor';
COMMENT ON TABLE history_track.chain_link IS
    'One link per chained event: sha256(previous link || the event''s row), in chain order';

SELECT pg_catalog.pg_extension_config_dump('history_track.chain', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.chain_link', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.tracked_table', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.prune_log', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.tracked_table_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.tracker', '');

REVOKE ALL ON history_track.tracked_table, history_track.tracker,
              history_track.tracked_table_id_seq, history_track.prune_log,
              history_track.chain, history_track.chain_link FROM PUBLIC;
-- What was pruned is no secret: anyone may read the log (nobody may write it).
GRANT SELECT ON history_track.prune_log TO PUBLIC;
