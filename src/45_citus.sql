-- Citus: tracked tables distributed over a cluster (doc/scale-out.md).
--
-- A hash-distributed table's event table is distributed too, by the same
-- column, colocated with it: shard n of the table and shard n of its event
-- table always live on the same node. Citus places our statement triggers on
-- every shard (it runs CREATE TRIGGER there), so a write is recorded where it
-- happens, by the shard's own trigger, and the events go straight into the
-- colocated event shard: never through Citus' planner (which cannot read the
-- transition tables: "could not find named tuplestore"), never to another
-- node. _citus_statement() turns each tracker's statement into that per-shard
-- form; everything else in history_track is unchanged.
--
-- Nothing here runs unless the citus extension is installed in the database;
-- Citus' catalogs and functions are reached through EXECUTE of constant
-- text, so the extension installs and checks without Citus. Every name that
-- reaches EXECUTE comes from the catalogs (Citus' pg_dist_* included), quoted
-- with %I / %L.
--
-- The hooks elsewhere (each a call into this file, marked "Citus"):
--   _citus_context_id() (30_context.sql)   the distributed transaction's id, for _context_id()
--   set_history_context(), _set_label() (30_context.sql) the context and label reach the workers
--   _begin_change() (50_api.sql)           the settings our DDL needs
--   _track_finish() (50_api.sql)           the event table distributed
--   _trigger_statements() (40_generate.sql) each statement written per shard
--   history_events(), history_as_of() (70_read.sql) events read from the shards
--   _revert() (75_revert.sql)              a revert in steps Citus can plan
--   _resync(), _record_baseline(), record_history_event() (60_manual.sql) refused
--   _on_ddl_end(), _on_sql_drop() (80_lifecycle.sql) a shard's triggers stay

-- Whether the citus extension is installed in this database.
CREATE FUNCTION history_track._citus_installed() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM pg_extension AS e WHERE e.extname = 'citus')
$$;

-- How Citus manages p_table: its distribution method ('h' hash, 'n' none),
-- distribution column, colocation group and replication model ('t' for a
-- reference table), or NULLs when Citus does not know the table.
CREATE FUNCTION history_track._citus_table(p_table regclass, OUT method "char", OUT dist_column name,
                                           OUT colocation integer, OUT model "char")
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT history_track._citus_installed() THEN
        RETURN;
    END IF;
    EXECUTE 'SELECT p.partmethod, pg_catalog.column_to_column_name(p.logicalrelid, p.partkey)::name, p.colocationid, p.repmodel'
            ' FROM pg_catalog.pg_dist_partition AS p WHERE p.logicalrelid = $1'
       INTO method, dist_column, colocation, model
      USING p_table;
END
$$;

-- Refuse p_what on a hash-distributed table: what history_track does not do
-- on Citus (doc/scale-out.md) -- baselines
-- (track_table(..., baseline => true), and what an ALTER TABLE that changes
-- values records: _resync()) and
-- record_history_event() (their statements join the table with its replay,
-- or read it, in ways Citus cannot plan),
-- prune_history() (Citus cannot plan its DELETE; and each shard's
-- append-only guard would not see the coordinator's permission) and
-- start_hash_chain() (one chain per event table needs one order of all its
-- events, which shards written in parallel do not have).
CREATE FUNCTION history_track._citus_refuse(p_table regclass, p_what text, p_hint text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF history_track._citus_distributed(p_table) THEN
        RAISE EXCEPTION '% is not supported on distributed table %', p_what, p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'history_track records and reads the history of Citus distributed tables, but does not rewrite it or '
                           'their rows.',
                  HINT = COALESCE(p_hint || ' ', '') || 'See doc/scale-out.md for what history_track supports on Citus.';
    END IF;
END
$$;

-- On a Citus worker, a call about a table history_track's catalog does not
-- know (from _tracked()): the catalog is the coordinator's. Citus sends a
-- query that reads one shard to that shard's node whole, its function calls
-- included, so SELECT revert_row('t', (SELECT ... FROM t_event WHERE id = 1))
-- runs revert_row() on a worker.
CREATE FUNCTION history_track._citus_refuse_worker(p_table regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_coordinator boolean;
BEGIN
    IF NOT history_track._citus_installed() THEN
        RETURN;
    END IF;
    EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO v_coordinator;
    IF NOT v_coordinator THEN
        RAISE EXCEPTION 'history_track''s functions run on the Citus coordinator, and this node is a worker'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = format('The history of %s is described in the coordinator''s catalog. Citus sends a query that reads one '
                                  'shard to that shard''s node, with the functions it calls.', p_table),
                  HINT = 'Call the function on the coordinator, in a query that reads no distributed table: pass values, '
                         'not subqueries.';
    END IF;
END
$$;

-- Whether p_table is a hash-distributed table (the kind history_track records
-- shard by shard).
CREATE FUNCTION history_track._citus_distributed(p_table regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((SELECT c.method = 'h' FROM history_track._citus_table(p_table) AS c), false)
$$;

-- Before history_track changes a table's triggers (from _begin_change): on a
-- Citus table, allow our triggers there and send our DDL to the workers over
-- one connection per node.
-- * citus.enable_unsafe_triggers: Citus refuses triggers on distributed
--   tables unless it is on. It is a per-session setting anyone may set; it is
--   turned on only for this transaction, not for the cluster, so the table
--   owner's own triggers stay refused unless they turn it on themselves. Why
--   our triggers are safe on shards: doc/scale-out.md.
-- * citus.multi_shard_modify_mode = sequential: Citus refuses to create or
--   replace a function (the trigger functions) after a parallel operation on
--   a distributed table in the same transaction.
-- prune_history() and start_hash_chain() are refused on a distributed table
-- (see _citus_refuse).
-- (set_config, not a SET clause: PostgreSQL 15+ lets only superusers put a
-- setting of a library that is not loaded into a SET clause, and
-- history_track may be installed without Citus, by a role that is not one.)
CREATE FUNCTION history_track._citus_begin(p_table regclass, p_call text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_citus record := history_track._citus_table(p_table);
BEGIN
    IF v_citus.method IS NULL THEN
        RETURN;
    END IF;
    IF v_citus.model = 't' THEN
        RAISE EXCEPTION 'history_track cannot track reference table %', p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'A write to a reference table runs on every node, so its triggers would record each change once per node.',
                  HINT = 'Track a hash-distributed table (create_distributed_table), or a table Citus does not manage.';
    ELSIF v_citus.method <> 'h' THEN
        RAISE EXCEPTION 'history_track cannot track %: Citus manages it as a % table', p_table,
                        CASE WHEN v_citus.colocation = 0 THEN 'local' ELSE 'single-shard (schema-based sharding)' END
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'history_track records hash-distributed tables shard by shard; local and single-shard Citus tables are '
                           'not supported.',
                  HINT = 'Track a hash-distributed table (create_distributed_table(tbl, column)), or a table Citus does not manage.';
    END IF;
    IF p_call IN ('prune_history', 'start_hash_chain') THEN
        PERFORM history_track._citus_refuse(p_table, p_call || '()');
    END IF;
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    IF current_setting('citus.multi_shard_modify_mode') <> 'sequential' THEN
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
END
$$;

-- Distribute the event table of a hash-distributed table, colocated with it
-- (from _track_finish, before the triggers are written; again on every
-- track_table, so a table tracked before it was distributed has its event
-- table distributed -- with the history it already holds -- by calling
-- track_table once more). The event table must hold the distribution column
-- (Citus distributes by it), and its primary key becomes (pgh_id, that
-- column): Citus requires the distribution column in every unique index.
-- pgh_id stays unique across the cluster: Citus gives the identity sequence
-- of a distributed table a range of its own on every node (node group << 48).
CREATE FUNCTION history_track._citus_distribute_event_table(p_table regclass, p_event regclass) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_citus record := history_track._citus_table(p_table);
    v_event record := history_track._citus_table(p_event);
    v_pkey  name;
BEGIN
    IF v_citus.method IS DISTINCT FROM 'h' THEN
        RETURN;
    END IF;
    IF v_event.method IS NOT NULL THEN
        IF v_event.method = 'h' AND v_event.colocation = v_citus.colocation AND v_event.dist_column = v_citus.dist_column THEN
            RETURN;
        END IF;
        RAISE EXCEPTION 'event table % of % is not colocated with it', p_event, p_table
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('The event table must be distributed by %I in the colocation group of %s.', v_citus.dist_column,
                                  p_table),
                  HINT = 'Colocate it again: SELECT update_distributed_table_colocation(event_table, colocate_with => table).';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_attribute AS a
                    WHERE a.attrelid = p_event AND a.attname = v_citus.dist_column AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'the distribution column "%" of % must be recorded', v_citus.dist_column, p_table
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The event table is distributed by the same column as the table, so that every shard''s history is '
                           'on the shard''s node.',
                  HINT = 'Keep it in the history: do not leave it out of columns, nor name it in exclude.';
    END IF;
    SELECT c.conname INTO v_pkey FROM pg_constraint AS c WHERE c.conrelid = p_event AND c.contype = 'p';
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I, ADD PRIMARY KEY (pgh_id, %I)',
                   history_track._qualified(p_event), v_pkey, v_citus.dist_column);
    -- A context's events are found by its id on every shard (history_events):
    -- the time a context id carries is the distributed transaction's, not
    -- the time each node wrote its events.
    EXECUTE format('CREATE INDEX ON %s (pgh_context_id) WHERE pgh_context_id IS NOT NULL', history_track._qualified(p_event));
    EXECUTE 'SELECT pg_catalog.create_distributed_table($1, $2, colocate_with => $3)'
      USING p_event, v_citus.dist_column::text, history_track._qualified(p_table);
END
$$;

-- The pgh_id of an event written on a shard, from v, the next value of the
-- event table's identity sequence on this node: the time in milliseconds
-- (since 2020) above the node's group (Citus gives each node's copy of the
-- sequence the range group << 48) and the sequence's low 16 bits. A row's
-- events are written one after the other (its writers queue on its lock), so
-- its ids grow, also when its shard moves to another node (whose sequence
-- range may be lower: plain sequence values would then sort its new events
-- before its old ones); events of other nodes in the same millisecond differ
-- by their group. Unique while no node writes 65536 events in one millisecond
-- and the cluster has at most 64 node groups; ordered as long as the nodes'
-- clocks agree to within the time a shard move takes.
CREATE FUNCTION history_track._citus_event_id(v bigint) RETURNS bigint
LANGUAGE sql VOLATILE
AS $$
    SELECT ((pg_catalog.floor(pg_catalog.date_part('epoch', pg_catalog.clock_timestamp()) OPERATOR(pg_catalog.*) 1000)::bigint
             OPERATOR(pg_catalog.-) 1577836800000) OPERATOR(pg_catalog.<<) 22)
           OPERATOR(pg_catalog.|) (((v OPERATOR(pg_catalog.>>) 48) OPERATOR(pg_catalog.&) 63) OPERATOR(pg_catalog.<<) 16)
           OPERATOR(pg_catalog.|) (v OPERATOR(pg_catalog.&) 65535)
$$;

-- The statement one tracker runs, written for the shards of a hash-distributed
-- table (from _trigger_statements; any other table's statement is returned
-- as it is; TRUNCATE's becomes a refusal).
-- The trigger function runs on a shard (TG_TABLE_NAME is the shard's name): a
-- branch per shard inserts into the colocated shard of the event table, a
-- plain local table, so PostgreSQL plans it like any other. A shard's pgh_id
-- is given explicitly (Citus leaves defaults off shards), _citus_event_id()
-- of the event table's identity sequence, after the statement's own values,
-- so that pgh_statement_id (drawn the same way) stays below every event of
-- its statement.
-- The branches name the shards there are now: a shard split adds new ones,
-- whose writes are refused with a HINT to track the table again (which writes
-- the branches again); moves and rebalancing keep the shards' names.
CREATE FUNCTION history_track._citus_statement(p_table regclass, p_operation text, p_stmt text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event    regclass := (history_track._tracked(p_table)).event_table;
    v_parts    text[];
    v_seq      text;
    v_branches text;
BEGIN
    IF NOT history_track._citus_distributed(p_table) THEN
        RETURN p_stmt;
    ELSIF p_operation = 'truncate' THEN
        -- Citus fires TRUNCATE triggers on the distributed table only, on the
        -- node the TRUNCATE was issued on: its events would be numbered there,
        -- out of the order of the shards' own events. Refused; DELETE is recorded.
        RETURN format(E'RAISE EXCEPTION ''TRUNCATE of tracked distributed table %% is not supported'', %L\n'
                      '        USING ERRCODE = ''feature_not_supported'',\n'
                      '              DETAIL = ''Citus runs TRUNCATE triggers on the distributed table, not on its shards.'',\n'
                      '              HINT = %L',
                      p_table::text, format('DELETE FROM %s; is recorded shard by shard.', p_table));
    END IF;
    -- INSERT INTO <event table> (<columns>) <query>: the column list may hold
    -- quoted names, with any character in them.
    v_parts := regexp_match(p_stmt, '^INSERT INTO (\S+)\s*\(((?:[^()"]|"(?:[^"]|"")*")*)\)\s*(SELECT\M.*)$');
    -- ... and the query's select list, up to its FROM (the first line that starts with FROM).
    v_parts := v_parts[1:2] || regexp_match(v_parts[3], '^(SELECT\M.*?)(\n\s*FROM\M.*)$');
    IF cardinality(v_parts) IS DISTINCT FROM 4 OR v_parts[1] <> history_track._qualified(v_event) THEN
        RAISE EXCEPTION 'history_track cannot write the % statement of % for Citus shards', p_operation, p_table
            USING ERRCODE = 'internal_error',
                  DETAIL = format('It does not read INSERT INTO %s (...) SELECT ...: %s', history_track._qualified(v_event),
                                  left(p_stmt, 200));
    END IF;
    v_seq := pg_get_serial_sequence(history_track._qualified(v_event), 'pgh_id');
    EXECUTE $sql$
        SELECT string_agg(format(E'%s TG_TABLE_NAME = %L THEN\n'
                                  '        INSERT INTO %s\n'
                                  '            (%s, pgh_id)\n'
                                  '    %s, history_track._citus_event_id(pg_catalog.nextval(%L::pg_catalog.regclass))%s;',
                                  CASE WHEN s.n = 1 THEN 'IF' ELSE 'ELSIF' END, s.shard[cardinality(s.shard)],
                                  format('%I.%I', n.nspname, s.event_shard[cardinality(s.event_shard)]), $3, $5, $4, $6),
                          E'\n    ' ORDER BY s.n)
          FROM (SELECT pg_catalog.parse_ident(pg_catalog.shard_name(t.logicalrelid, t.shardid)) AS shard,
                       pg_catalog.parse_ident(pg_catalog.shard_name(e.logicalrelid, e.shardid)) AS event_shard,
                       row_number() OVER (ORDER BY t.shardminvalue::bigint) AS n
                  FROM pg_catalog.pg_dist_shard AS t
                  JOIN pg_catalog.pg_dist_shard AS e ON e.logicalrelid = $2 AND e.shardminvalue = t.shardminvalue
                 WHERE t.logicalrelid = $1) AS s
         CROSS JOIN pg_catalog.pg_namespace AS n
         WHERE n.oid = (SELECT c.relnamespace FROM pg_catalog.pg_class AS c WHERE c.oid = $2)
    $sql$ INTO v_branches USING p_table, v_event, v_parts[2], v_seq,
                                replace(replace(v_parts[3], format('pg_catalog.nextval(%L::pg_catalog.regclass)', v_seq),
                                                format('history_track._citus_event_id(pg_catalog.nextval(%L::pg_catalog.regclass))',
                                                       v_seq)),
                                        format('history_track._statement_id(%L::pg_catalog.regclass)', v_seq),
                                        format('history_track._citus_event_id(history_track._statement_id(%L::pg_catalog.regclass))',
                                               v_seq)),
                                v_parts[4];
    RETURN v_branches
        || E'\n    ELSE\n        RAISE EXCEPTION ''history_track: % is not a shard of %'', TG_TABLE_NAME, '
        || quote_literal(history_track._qualified(p_table))
        || E'\n            USING ERRCODE = ''object_not_in_prerequisite_state'','
        || E'\n                  HINT = '
        || quote_literal(format('Its shards changed (a shard split): track the table again, SELECT track_table(%L), to have its '
                                'triggers written again.', p_table::text))
        || E';\n    END IF';
END
$$;

-- The current Citus distributed transaction (from _context_id): a key naming
-- it on every node of the cluster (the initiating node and its transaction
-- number) and when it started there; NULLs without Citus, or in a transaction
-- that is not part of a distributed one.
CREATE FUNCTION history_track._citus_transaction(OUT key text, OUT started timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id record;
BEGIN
    IF current_setting('citus.version', true) IS NULL OR NOT history_track._citus_installed() THEN
        RETURN;
    END IF;
    EXECUTE 'SELECT t.initiator_node_identifier, t.transaction_number, t.transaction_stamp'
            ' FROM pg_catalog.get_current_transaction_id() AS t'
       INTO v_id;
    IF v_id.transaction_number <> 0 THEN
        key := format('citus/%s/%s/%s', v_id.initiator_node_identifier, v_id.transaction_number, v_id.transaction_stamp);
        started := v_id.transaction_stamp;
    END IF;
END
$$;

-- Make a setting of history_track's set on this node for the rest of the
-- transaction (the context, from set_history_context; the label, from
-- _set_label) reach the other nodes of the distributed transaction: Citus
-- passes SET LOCAL on to the nodes the transaction involves, now and later,
-- when citus.propagate_set_commands is 'local' (set for this one command
-- only). The transaction is first made a distributed one, so that its id
-- (the context id, _citus_transaction) exists from now on, before its first
-- distributed statement: create_intermediate_result() of an empty query
-- starts it and writes nothing that outlives the transaction.
-- p_setting is 'context' or 'label' (history_track.<p_setting>); the value is
-- written as a literal. Any role may call this: it sets its own settings, as
-- SET LOCAL would.
CREATE FUNCTION history_track._citus_set_local(p_setting text, p_value text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_mode text;
BEGIN
    IF p_setting NOT IN ('context', 'label') THEN
        RAISE EXCEPTION 'history_track has no setting %', p_setting USING ERRCODE = 'invalid_parameter_value';
    ELSIF current_setting('citus.version', true) IS NULL OR NOT history_track._citus_installed() THEN
        RETURN;
    END IF;
    IF (history_track._citus_transaction()).key IS NULL THEN
        EXECUTE 'SELECT pg_catalog.create_intermediate_result(''history_track_context'', ''SELECT WHERE false'')';
    END IF;
    v_mode := current_setting('citus.propagate_set_commands');
    PERFORM set_config('citus.propagate_set_commands', 'local', true);
    EXECUTE format('SET LOCAL history_track.%I = %L', p_setting, p_value);
    PERFORM set_config('citus.propagate_set_commands', v_mode, true);
END
$$;

-- The name of a temporary table pg_temp.<p_name> for a copy a reader or a
-- revert makes, qualified; an earlier copy of this transaction (the caller
-- creates it ON COMMIT DROP) dropped first.
CREATE FUNCTION history_track._citus_temp_table(p_name text) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_copy text := format('pg_temp.%I', p_name);
BEGIN
    IF to_regclass(v_copy) IS NOT NULL THEN
        EXECUTE format('DROP TABLE %s', v_copy);
    END IF;
    RETURN v_copy;
END
$$;

-- A revert of a hash-distributed table (from _revert(); p_keys, p_set,
-- p_insert: _revert_columns()): Citus cannot plan the one statement _revert_sql()
-- writes (data-modifying CTEs over a function's rows), so the rows to
-- restore are copied into a temporary table first, and three statements it
-- can plan follow: delete the rows the copy does not have, update those
-- that differ, insert those missing. With p_one_key, only the row whose key
-- is $2. Returns the number of rows written.
CREATE FUNCTION history_track._citus_revert(p_table regclass, p_source text, p_one_key boolean,
                                            p_keys name[], p_set name[], p_insert name[],
                                            p_ts timestamptz, p_key text, p_event bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_copy    text := history_track._citus_temp_table('pgh_citus_revert_' || (history_track._tracked(p_table)).table_id);
    v_table   text := history_track._only(p_table) || history_track._qualified(p_table);
    v_mine    text := CASE WHEN p_one_key THEN history_track._revert_key_sql(p_table) || ' AND ' ELSE '' END;
    v_count   bigint := 0::bigint;
    v_written bigint;
BEGIN
    -- Shaped by the source, not by the table: a generated column, which a
    -- revert does not write, may be NULL there (revert_row(tbl, event)).
    EXECUTE format('CREATE TEMPORARY TABLE %s ON COMMIT DROP AS %s', v_copy, p_source) USING p_ts, p_key, p_event;
    EXECUTE format('DELETE FROM %s AS pgh_t WHERE %s(%s) NOT IN (SELECT %s FROM %s AS pgh_r)',
                   v_table, v_mine, history_track._list('pgh_t.%I', p_keys), history_track._list('pgh_r.%I', p_keys),
                   v_copy)
      USING p_ts, p_key;
    GET DIAGNOSTICS v_written = ROW_COUNT;
    v_count := v_count + v_written;
    IF p_set IS NOT NULL THEN
        EXECUTE history_track._revert_update_sql(p_table, v_copy, p_keys, p_set);
        GET DIAGNOSTICS v_written = ROW_COUNT;
        v_count := v_count + v_written;
    END IF;
    EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s AS pgh_r '
                   'WHERE (%s) NOT IN (SELECT %s FROM %s AS pgh_t WHERE %strue)',
                   history_track._qualified(p_table), history_track._list('%I', p_insert),
                   history_track._list('pgh_r.%I', p_insert), v_copy,
                   history_track._list('pgh_r.%I', p_keys), history_track._list('pgh_t.%I', p_keys), v_table, v_mine)
      USING p_ts, p_key;
    GET DIAGNOSTICS v_written = ROW_COUNT;
    EXECUTE format('DROP TABLE %s', v_copy);
    RETURN v_count + v_written;
END
$$;

-- The events of a hash-distributed table that a reading function needs, read
-- from the shards into a temporary table, whose name it returns (NULL for any
-- other table: the reader reads the event table itself). Citus cannot run
-- the readers' queries (recursive CTEs, lateral joins, DISTINCT ON across
-- shards) on a distributed table; on a local copy of the events they run as
-- they are. With p_key, the events of that row: all on the one shard its
-- distribution column's value hashes to (Citus cannot change that value,
-- so a row's whole history, key changes included, is there), read by a
-- query Citus routes to that shard. With p_context, the events of the rows
-- that context wrote (so each has the events before it to diff against);
-- else all of them. Run as the caller (SECURITY INVOKER), who must be able
-- to read the event table; dropped at the end of the transaction.
CREATE FUNCTION history_track._citus_events(p_table regclass, p_key text, p_context uuid) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_citus  record := history_track._citus_table(p_table);
    v_table  history_track.tracked_table;
    v_keys   name[];
    v_copy   text;
    v_event  text;
    v_type   text;
BEGIN
    IF v_citus.method IS DISTINCT FROM 'h' THEN
        RETURN NULL;
    END IF;
    v_table := history_track._tracked(p_table);
    v_event := history_track._qualified(v_table.event_table);
    v_copy := history_track._citus_temp_table('pgh_citus_events_' || v_table.table_id);
    EXECUTE format('CREATE TEMPORARY TABLE %s ON COMMIT DROP AS SELECT * FROM %s WITH NO DATA', v_copy, v_event);
    IF p_key IS NOT NULL THEN
        -- The distribution column's value, from the key as history_events()
        -- and history_as_of() take it (_key_match_sql), cast to the column's
        -- type in the event table (a trusted type, see _stored_type).
        v_keys := history_track._key_columns(p_table);
        SELECT format_type(a.atttypid, a.atttypmod) INTO v_type
          FROM pg_attribute AS a WHERE a.attrelid = v_table.event_table AND a.attname = v_citus.dist_column;
        EXECUTE format('INSERT INTO %s SELECT * FROM %s AS pgh_e WHERE pgh_e.%I = %s', v_copy, v_event, v_citus.dist_column,
                       CASE WHEN cardinality(v_keys) = 1 THEN format('$1::%s', v_type)
                            ELSE format('($1::pg_catalog.jsonb ->> %s)::%s',
                                        array_position(v_keys, v_citus.dist_column) - 1, v_type) END)
          USING p_key;
    ELSIF p_context IS NOT NULL THEN
        EXECUTE format('INSERT INTO %1$s SELECT * FROM %2$s AS pgh_e WHERE pgh_e.%3$I IN '
                       '(SELECT pgh_c.%3$I FROM %2$s AS pgh_c WHERE pgh_c.pgh_context_id = $1)',
                       v_copy, v_event, v_citus.dist_column)
          USING p_context;
    ELSE
        EXECUTE format('INSERT INTO %s SELECT * FROM %s', v_copy, v_event);
    END IF;
    EXECUTE format('CREATE INDEX ON %s (pgh_obj_id, pgh_id)', v_copy);
    EXECUTE format('ANALYZE %s', v_copy);
    RETURN v_copy;
END
$$;

-- On every node, after DDL (from the DDL and sql_drop event triggers): the
-- triggers Citus put on the shards of tracked tables stay as Citus made them.
-- A table owner owns its shards, and could otherwise connect to a worker and
-- drop or disable a shard's trigger there (citus.enable_manual_changes_to_shards
-- is a setting anyone may turn on), where history_track's catalog, which is
-- the coordinator's, does not know the shard. A trigger calling one of
-- history_track's generated functions may be dropped with its table (a shard
-- moved away, a table dropped), or by Citus itself (untrack_table() on the
-- coordinator drops them on the workers over Citus' own connections, which
-- name themselves citus_internal), never on its own; none may be disabled.
CREATE FUNCTION history_track._citus_guard_shards(p_dropped boolean) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_found text;
BEGIN
    IF NOT history_track._citus_installed() OR current_setting('application_name') LIKE 'citus\_internal%' THEN
        RETURN;
    END IF;
    IF p_dropped THEN
        SELECT d.object_identity INTO v_found FROM pg_event_trigger_dropped_objects() AS d
         WHERE d.object_type = 'trigger' AND d.original
           AND d.object_identity ~ '^history_track_(insert|update|delete)_[0-9]+ on ';
    ELSE
        SELECT format('%s on %s', tg.tgname, tg.tgrelid::regclass) INTO v_found
          FROM pg_trigger AS tg
          JOIN pg_proc AS p ON p.oid = tg.tgfoid
         WHERE p.pronamespace = 'history_track'::regnamespace AND p.proname ~ '^_t[0-9]+_'
           AND tg.tgenabled <> 'O'
           -- (a tracked table's own triggers: _assert_triggers() says it)
           AND NOT EXISTS (SELECT FROM history_track.tracked_relation AS r WHERE r.relation = tg.tgrelid)
         LIMIT 1;
    END IF;
    IF v_found IS NOT NULL THEN
        RAISE EXCEPTION 'the history trigger % of a shard cannot be %', v_found, CASE WHEN p_dropped THEN 'dropped' ELSE 'disabled' END
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'Its table is tracked: every write on its shards must be recorded.',
                  HINT = 'To stop recording, call untrack_table() on the coordinator.';
    END IF;
END
$$;
