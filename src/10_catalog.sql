-- The catalog: which tables have an event table, and which trackers write to it.
--
-- A row of tracked_table exists as long as the event table does: untracking a
-- table (without drop_events) removes its trackers but keeps this row, so the
-- history stays known and a later track_table() appends to the same event table.
-- Catalog references are regclass/regtype/regprocedure, so renames and
-- pg_dump keep working.
--
-- The catalog is readable by everyone (history_trackers shows it anyway):
-- the reading functions run with their caller's privileges and need it.
-- Only the extension's owner writes it.

CREATE SEQUENCE history_track.tracked_table_id_seq AS integer;

CREATE TABLE history_track.tracked_table (
    table_name  regclass    NOT NULL PRIMARY KEY,
    event_table regclass    NOT NULL UNIQUE,
    -- Stable short id used to name the generated functions and types.
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

-- The columns of each tracked table as history_track last saw them, by
-- attribute number: what tells a renamed column from a dropped and an added
-- one after an ALTER TABLE (see 80_lifecycle.sql), without any state kept
-- between the start and the end of the command.
CREATE TABLE history_track.tracked_column (
    table_name regclass NOT NULL
               REFERENCES history_track.tracked_table (table_name) ON DELETE CASCADE ON UPDATE CASCADE,
    attnum     smallint NOT NULL,
    attname    name     NOT NULL,
    atttype    regtype  NOT NULL,
    atttypmod  integer  NOT NULL,
    key_position smallint,          -- its place in the primary key, NULL if not in it
    PRIMARY KEY (table_name, attnum)
);

COMMENT ON TABLE history_track.tracked_column IS
    'The columns of each tracked table as history_track last followed them (by attribute number)';

-- The relations whose writes a tracked table's triggers record: the table,
-- and each partition of its tree (what history_track wrote triggers on). A
-- partition dropped while its tree is tracked would take rows out of the table
-- without an event: refused (see _on_sql_drop()).
CREATE TABLE history_track.tracked_relation (
    relation   regclass NOT NULL PRIMARY KEY,
    table_name regclass NOT NULL
               REFERENCES history_track.tracked_table (table_name) ON DELETE CASCADE ON UPDATE CASCADE
);

COMMENT ON TABLE history_track.tracked_relation IS
    'The relations (a tracked table and its partitions) whose writes its history triggers record';

-- Every event table history_track created and has not dropped, whether its
-- table is still tracked, untracked or dropped: none may be dropped but
-- through untrack_table(..., drop_events => true) or by a superuser (logged).
CREATE TABLE history_track.event_table (
    event_table regclass    NOT NULL PRIMARY KEY,
    history_of  text        NOT NULL,            -- the table's name when it was created
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE history_track.event_table IS
    'Every event table history_track created and has not dropped (also of tables dropped since)';

-- The tracked relations an ALTER TABLE rewrote, while it runs (one backend's
-- rows, written and removed in its transaction; nobody else may write it).
CREATE UNLOGGED TABLE history_track.rewritten (
    pid   integer NOT NULL,
    xid   xid8    NOT NULL,
    relid oid     NOT NULL
);

COMMENT ON TABLE history_track.rewritten IS
    'The tracked relations an ALTER TABLE rewrote, while it runs (see _on_rewrite())';

-- Who is calling: one row per call into a SECURITY DEFINER function of the
-- API, written by its SECURITY INVOKER wrapper (_enter()) as the calling
-- role, and removed when the call returns (_leave()). Anyone may insert,
-- but only a row naming the role it runs as, in its own backend and
-- transaction (the CHECKs run as the inserting role), with the next id (no
-- privilege on the column id, so no OVERRIDING SYSTEM VALUE). See _caller().
CREATE UNLOGGED TABLE history_track.acting (
    id  bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pid integer NOT NULL DEFAULT pg_catalog.pg_backend_pid()
                CHECK (pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()),
    xid xid8    NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
                CHECK (xid OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id()),
    who name    NOT NULL DEFAULT CURRENT_USER
                CHECK (who OPERATOR(pg_catalog.=) CURRENT_USER)
);
CREATE INDEX ON history_track.acting (pid, xid);

COMMENT ON TABLE history_track.acting IS
    'The role calling into history_track, while the call runs (see _caller())';

CREATE SEQUENCE history_track.condition_id_seq AS integer;

CREATE TABLE history_track.tracker (
    table_name regclass NOT NULL
               REFERENCES history_track.tracked_table (table_name) ON DELETE CASCADE ON UPDATE CASCADE,
    label      text     NOT NULL CHECK (label <> ''),
    operations text[]   NOT NULL
               CHECK (operations OPERATOR(pg_catalog.<@) '{insert,update,delete}'::text[]
                      AND pg_catalog.cardinality(operations) > 0),
    -- The compiled condition (see 35_condition.sql): a SQL function over the
    -- rows OLD and NEW whose body is PostgreSQL's own parse tree of what the
    -- user wrote, checked against an allowlist; NULL: no condition.
    condition  regprocedure UNIQUE,
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
    'One row per tracker: a label, the operations it fires on, its compiled condition and the row it stores';

-- Functions a condition may call besides PostgreSQL's own immutable ones (see
-- _condition_allows()): what a superuser vouches for, e.g. an extension's
-- operators. Only the extension's owner may change it.
CREATE TABLE history_track.condition_function (
    function regprocedure NOT NULL PRIMARY KEY,
    added_by name         NOT NULL DEFAULT CURRENT_USER,
    added_at timestamptz  NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE history_track.condition_function IS
    'Functions (and through them operators) a superuser allowed in tracker conditions beyond PostgreSQL''s own immutable ones';

-- Limits a superuser sets for the whole database (a setting any role could
-- change would limit nothing). At most one row; without it, the defaults hold
-- (so pg_dump carries a changed limit and nothing else).
CREATE TABLE history_track.config (
    one               boolean NOT NULL PRIMARY KEY DEFAULT true CHECK (one),
    -- The largest context (history_track.context, as JSON text) an event carries.
    max_context_bytes integer NOT NULL DEFAULT 65536 CHECK (max_context_bytes >= 1024)
);

COMMENT ON TABLE history_track.config IS
    'Database-wide limits, set by a superuser: max_context_bytes, the largest context an event carries';

-- Every removal of history: prune_history() calls, untrack_table(...,
-- drop_events => true), and a superuser's DROP TABLE of an event table.
CREATE TABLE history_track.prune_log (
    table_name     regclass    NOT NULL,
    event_table    regclass    NOT NULL,
    before         timestamptz,                 -- NULL: the whole history
    events_deleted bigint      NOT NULL,
    pruned_by      name        NOT NULL,
    pruned_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    action         text        NOT NULL DEFAULT 'prune'
                               CHECK (action IN ('prune', 'drop_events', 'drop_table')),
    -- The names as they were: a dropped table's regclass prints as a number.
    table_text     text,
    event_text     text
);

COMMENT ON TABLE history_track.prune_log IS
    'One row per removal of history: prune_history() (action prune), untrack_table(..., drop_events => true) (drop_events) or a '
    'superuser''s DROP TABLE of an event table (drop_table)';

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
SELECT pg_catalog.pg_extension_config_dump('history_track.tracked_column', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.tracked_relation', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.event_table', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.prune_log', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.tracked_table_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.condition_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.tracker', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.condition_function', '');
SELECT pg_catalog.pg_extension_config_dump('history_track.config', '');

REVOKE ALL ON history_track.tracked_table, history_track.tracked_column, history_track.tracker,
              history_track.tracked_relation, history_track.event_table,
              history_track.tracked_table_id_seq, history_track.condition_id_seq, history_track.prune_log,
              history_track.condition_function, history_track.config, history_track.rewritten,
              history_track.acting, history_track.chain, history_track.chain_link FROM PUBLIC;
GRANT INSERT (pid, xid, who), SELECT (id) ON history_track.acting TO PUBLIC;    -- (see above)
-- The catalog, the limits and what was removed are no secret: anyone may read
-- them (nobody but the extension may write them). The chains are not readable:
-- a link's hash would let a role that cannot read an event confirm a guess of it.
GRANT SELECT ON history_track.tracked_table, history_track.tracked_column, history_track.tracker,
                history_track.tracked_relation, history_track.event_table,
                history_track.condition_function, history_track.config, history_track.prune_log TO PUBLIC;
GRANT SELECT (event_table, started_by, started_at) ON history_track.chain TO PUBLIC;
