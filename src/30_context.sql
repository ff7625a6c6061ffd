-- Context: free-form metadata (user, request, job) attached to every event a
-- transaction writes. This file is the only place context is read.
--
-- The context lives in the setting history_track.context as a JSON object,
-- normally transaction-local (set_config(..., true) or set_history_context()),
-- so it ends with the transaction and is safe behind transaction poolers.
-- Its id is derived from the transaction, never from a setting, so it is the
-- same for every event of one transaction and cannot be forged.

-- A UUIDv7 of a moment (to the millisecond) and the bits of two numbers: 12
-- of p_a, 62 of p_b. (Inlined: each parameter is used once.)
CREATE FUNCTION history_track._uuid7(p_time timestamptz, p_a bigint, p_b bigint) RETURNS uuid
LANGUAGE sql STABLE    -- as date_part() of a timestamptz: else not inlined
AS $$
    SELECT pg_catalog.encode(
               pg_catalog.int8send(
                   (pg_catalog.floor(pg_catalog.date_part('epoch', p_time) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8
                    OPERATOR(pg_catalog.<<) 16)
                   OPERATOR(pg_catalog.|) 28672                                    -- version 7
                   OPERATOR(pg_catalog.|) (p_a OPERATOR(pg_catalog.&) 4095))
               OPERATOR(pg_catalog.||)
               pg_catalog.int8send((p_b OPERATOR(pg_catalog.&) 4611686018427387903)
                                   OPERATOR(pg_catalog.|) '-9223372036854775808'::pg_catalog.int8),   -- variant 10
               'hex')::pg_catalog.uuid
$$;

-- Citus (45_citus.sql): the context id of the current distributed
-- transaction, for _context_id() (defined here, before the SQL function that
-- calls it): a UUIDv7 of its start and two hashes of its key
-- (_citus_transaction()), the same on every node; NULL outside one.
CREATE FUNCTION history_track._citus_context_id() RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id record := history_track._citus_transaction();
BEGIN
    IF v_id.key IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN history_track._uuid7(v_id.started, hashtextextended(v_id.key, 0), hashtextextended(v_id.key, 1));
END
$$;

-- The id of the current transaction's context, a UUIDv7: its first 48 bits
-- are the transaction's start time (now(), in milliseconds, the same clock as
-- pgh_created_at), the other 74 two 64-bit hashes of the top-level
-- transaction id, seeded with the database and the server's start time. So
-- every event of one transaction shares it, no two transactions do (a
-- transaction id is never reused by one server; a standby promoted in its
-- place has another start time), no setting can choose it, ids sort by time,
-- and history_context_events() finds a context's events through the time
-- index on pgh_created_at instead of an index of its own.
-- One SQL expression, so that PostgreSQL inlines it into the generated
-- triggers (which read it once per written statement): as a PL/pgSQL
-- function of an md5 of text,
-- reading the context cost a single-row update's trigger 137k instructions
-- instead of 113k (callgrind, doc/performance.md).
-- Citus (45_citus.sql): in a distributed transaction, derived from its
-- cluster-wide id instead (asked only where Citus is loaded).
-- (_context_id, _context_json, _context_label, _parse_context and
-- _context_is_set run once per written statement, so they carry no SET
-- clause of their own (a SQL function that has one is not inlined): only the
-- extension's owner (and the role the triggers run as) may call them, always
-- from functions that pin search_path, and every name in them is qualified.)
CREATE FUNCTION history_track._context_id() RETURNS uuid
LANGUAGE sql VOLATILE    -- as pg_current_xact_id(), which assigns the transaction an id: else not inlined
AS $$
    SELECT COALESCE(
        CASE WHEN pg_catalog.current_setting('citus.version', true) IS NOT NULL THEN history_track._citus_context_id() END,
        history_track._uuid7(
            pg_catalog.now(),
            pg_catalog.hashtextextended(pg_catalog.pg_current_xact_id()::pg_catalog.text,
                pg_catalog.hashnameextended(pg_catalog.current_database(),
                    pg_catalog.hashfloat8extended(pg_catalog.date_part('epoch', pg_catalog.pg_postmaster_start_time()), 0))),
            pg_catalog.hashtextextended(pg_catalog.pg_current_xact_id()::pg_catalog.text,
                pg_catalog.hashnameextended(pg_catalog.current_database(),
                    pg_catalog.hashfloat8extended(pg_catalog.date_part('epoch', pg_catalog.pg_postmaster_start_time()), 1)))))
$$;

-- When a context began: the transaction start time its id carries, to the millisecond.
CREATE FUNCTION history_track._context_time(p_context_id uuid) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT
AS $$
    SELECT pg_catalog.to_timestamp((('x' OPERATOR(pg_catalog.||) pg_catalog.substr(
               pg_catalog.replace(p_context_id::text, '-', ''), 1, 12))::bit(48)::bigint)::double precision
           OPERATOR(pg_catalog./) 1000)
$$;

-- (Returns jsonb, to be one branch of _parse_context's CASE: it never returns.)
CREATE FUNCTION history_track._invalid_context(p_text text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'history_track.context is not valid JSON'
        USING ERRCODE = 'invalid_text_representation',
              DETAIL = format('The setting holds %L.', left(p_text, 200)),
              HINT = 'Set it to a JSON object, e.g. SELECT set_config(''history_track.context'', ''{"user": "alice"}'', true), or use '
                     'set_history_context().';
END
$$;

-- The context as JSON: the text of history_track.context parsed, or a clear
-- error naming the setting. On PostgreSQL 16+ one SQL expression, which
-- PostgreSQL inlines into _context_json() (pg_input_is_valid: no subtransaction,
-- no call); before, by catching the cast's error. (A DO block creates the
-- version's body; both bodies behave the same.)
DO $context$
BEGIN
    IF pg_catalog.current_setting('server_version_num')::integer >= 160000 THEN
        CREATE FUNCTION history_track._parse_context(p_text text) RETURNS jsonb
        LANGUAGE sql STABLE
        AS $body$
            SELECT CASE WHEN pg_catalog.pg_input_is_valid(p_text, 'jsonb') THEN p_text::pg_catalog.jsonb
                        ELSE history_track._invalid_context(p_text) END
        $body$;
    ELSE
        CREATE FUNCTION history_track._parse_context(p_text text) RETURNS jsonb
        LANGUAGE plpgsql STABLE STRICT
        AS $body$
        BEGIN
            RETURN p_text::pg_catalog.jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
            PERFORM history_track._invalid_context(p_text);   -- raises
            RETURN NULL;
        END
        $body$;
    END IF;
END
$context$;

-- The largest context an event carries, in bytes of JSON text: what a
-- superuser set in history_track.config, or 64 kB.
CREATE FUNCTION history_track._max_context_bytes() RETURNS integer
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((SELECT c.max_context_bytes FROM history_track.config AS c), 65536)
$$;

-- Refuse a context of more than the limit (contexts up to 1 kB, below any
-- limit, skip the lookup).
CREATE FUNCTION history_track._assert_context_size(p_bytes integer) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_limit integer;
BEGIN
    IF p_bytes <= 1024 THEN
        RETURN;
    END IF;
    v_limit := history_track._max_context_bytes();
    IF p_bytes > v_limit THEN
        RAISE EXCEPTION 'history_track.context is too large: % bytes', p_bytes
            USING ERRCODE = 'program_limit_exceeded',
                  DETAIL = format('Every event a statement writes carries the context; the limit is %s bytes '
                                  '(history_track.config.max_context_bytes).', v_limit),
                  HINT = 'Keep the context to what identifies the action (user, request, job) and put bulk data in the rows themselves; a '
                         'superuser may raise the limit: INSERT INTO history_track.config (max_context_bytes) VALUES (...) ON CONFLICT '
                         '(one) DO UPDATE SET max_context_bytes = excluded.max_context_bytes.';
    END IF;
END
$$;

-- The context's checks, in one place: the text of history_track.context as
-- a JSON object, NULL when empty, or a clear error. A setting that is not a
-- JSON object, or larger than the limit, is refused: the write that would
-- have carried it fails instead of being recorded without it.
CREATE FUNCTION history_track._context_checked(p_text text) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_context jsonb;
BEGIN
    IF p_text IS NULL OR p_text = '' THEN
        RETURN NULL;
    END IF;
    IF octet_length(p_text) > 1024 THEN    -- (a call costs a writer more than the test)
        PERFORM history_track._assert_context_size(octet_length(p_text));
    END IF;
    v_context := history_track._parse_context(p_text);
    IF jsonb_typeof(v_context) <> 'object' THEN
        RAISE EXCEPTION 'history_track.context must be a JSON object, not %', jsonb_typeof(v_context)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('The setting holds %L.', left(p_text, 200)),
                  HINT = 'Set it to a JSON object, e.g. {"user": "alice"}, or use set_history_context().';
    END IF;
    RETURN v_context;
END
$$;

-- The current context as JSON (NULL when none is set), checked
-- (_context_checked). What the generated triggers read, once per statement:
-- one SQL expression, which PostgreSQL inlines, so that the usual context
-- (up to 1 kB, starting with "{", as set_history_context() and the Python
-- and Django wrappers write it) only needs parsing: valid JSON text that
-- starts with "{" is an object, and below 1 kB no limit applies. Anything
-- else takes the full checks. (Three inlined expressions instead of a
-- PL/pgSQL function returning a record: 18k instructions less for a
-- single-row update with a context, 275k instead of 293k, doc/performance.md.)
CREATE FUNCTION history_track._context_json() RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN pg_catalog.octet_length(pg_catalog.current_setting('history_track.context', true))
                         OPERATOR(pg_catalog.<=) 1024
                     AND pg_catalog.current_setting('history_track.context', true) OPERATOR(pg_catalog.~~) '{%'
                THEN history_track._parse_context(pg_catalog.current_setting('history_track.context', true))
                ELSE history_track._context_checked(pg_catalog.current_setting('history_track.context', true)) END
$$;

-- (Returns text, to be one branch of _context_label's CASE: it never returns.)
CREATE FUNCTION history_track._invalid_label(p_label text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'history_track.label must be empty or ''revert'', not %', format('%L', p_label)
        USING ERRCODE = 'invalid_parameter_value',
              DETAIL = 'Events of the default trackers are labeled insert, update and delete, or revert while revert_row() or '
                       'revert_table() runs.',
              HINT = 'RESET history_track.label; record your own labels with track_table(..., label => ...) or record_history_event().';
END
$$;

-- The default trackers' label for this statement, NULL for their own
-- ('insert', 'update', 'delete'): revert_row() and revert_table() run with
-- history_track.label = 'revert', so their writes are labeled as a revert.
-- No other value is accepted: a setting cannot pass writes off as anything
-- but what they are. (Inlined, as _context_json().)
CREATE FUNCTION history_track._context_label() RETURNS text
LANGUAGE sql STABLE
AS $$
    SELECT CASE WHEN pg_catalog.current_setting('history_track.label', true) OPERATOR(pg_catalog.=) 'revert' THEN 'revert'
                WHEN pg_catalog.current_setting('history_track.label', true) OPERATOR(pg_catalog.<>) ''
                THEN history_track._invalid_label(pg_catalog.current_setting('history_track.label', true)) END
$$;

-- The current context, its id and the label, or NULLs when none is set: the
-- three above in one call, for the manual events and set_history_context().
-- (The generated triggers evaluate the three as expressions of their own.)
CREATE FUNCTION history_track._context(OUT context_id uuid, OUT context jsonb, OUT label text)
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    label := history_track._context_label();
    context := history_track._context_json();
    IF context IS NOT NULL THEN
        context_id := history_track._context_id();
    END IF;
END
$$;

-- Whether a context or a label is set at all: what the generated triggers ask
-- before reading it. A one-expression SQL function, so PostgreSQL inlines it
-- and PL/pgSQL evaluates it without running a query: a statement written
-- without context pays 0.4 microseconds here instead of the 2.7 of reading
-- it (measured in a PL/pgSQL loop; about 1% of a single-row update).
CREATE FUNCTION history_track._context_is_set() RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.current_setting('history_track.context', true) OPERATOR(pg_catalog.<>) ''
        OR pg_catalog.current_setting('history_track.label', true) OPERATOR(pg_catalog.<>) ''
$$;

-- Label the default trackers' events of the rest of the transaction
-- (history_track.label: 'revert' while revert_row() or revert_table() writes,
-- '' afterwards), on every node of a Citus distributed transaction too.
CREATE FUNCTION history_track._set_label(p_label text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM set_config('history_track.label', p_label, true);
    PERFORM history_track._citus_set_local('label', p_label);   -- Citus (45_citus.sql)
END
$$;

CREATE FUNCTION @extschema@.set_history_context(metadata jsonb) RETURNS uuid
LANGUAGE plpgsql VOLATILE
-- SECURITY DEFINER: to call the internal context functions, which only the
-- extension's owner may execute. It only sets the caller's own setting.
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_merged jsonb;
BEGIN
    IF metadata IS NULL OR jsonb_typeof(metadata) <> 'object' THEN
        RAISE EXCEPTION 'context metadata must be a JSON object, not %',
                        COALESCE(jsonb_typeof(metadata), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an object, e.g. set_history_context(''{"user": "alice"}'').';
    END IF;
    v_merged := COALESCE((history_track._context()).context, '{}'::jsonb) || metadata;
    PERFORM history_track._assert_context_size(octet_length(v_merged::text));
    PERFORM set_config('history_track.context', v_merged::text, true);
    PERFORM history_track._citus_set_local('context', v_merged::text);   -- Citus (45_citus.sql): to the other nodes too
    RETURN history_track._context_id();
END
$$;

COMMENT ON FUNCTION @extschema@.set_history_context(jsonb) IS
    'Merge metadata into the current transaction''s history context and return the context id';
