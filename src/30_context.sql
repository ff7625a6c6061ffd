-- Context: free-form metadata (user, request, job) attached to every event a
-- transaction writes. This file is the only place context is read.
--
-- The context lives in the setting history_track.context as a JSON object,
-- normally transaction-local (set_config(..., true) or set_history_context()),
-- so it ends with the transaction and is safe behind transaction poolers.
-- Its id is derived from the transaction, never from a setting, so it is the
-- same for every event of one transaction and cannot be forged.

-- The id of the current transaction's context.
CREATE FUNCTION history_track._context_id() RETURNS uuid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.md5(pg_catalog.format('%s/%s/%s',
               (pg_catalog.pg_control_system()).system_identifier,
               (SELECT d.oid FROM pg_catalog.pg_database AS d
                 WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()),
               pg_catalog.pg_current_xact_id()))::uuid
$$;

-- The current context's metadata, or NULL when none is set.
-- A setting that is not a JSON object is refused: the write that would have
-- carried it fails with a clear error instead of being recorded without it.
CREATE FUNCTION history_track._context_data() RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_text text := pg_catalog.current_setting('history_track.context', true);
    v_data jsonb;
BEGIN
    IF v_text IS NULL OR v_text OPERATOR(pg_catalog.=) '' THEN
        RETURN NULL;
    END IF;
    -- Statements in a PL/pgSQL branch are only parsed when reached, so the
    -- PostgreSQL 16+ check is never compiled on older servers; there the cast
    -- below reports the malformed JSON itself.
    IF pg_catalog.current_setting('server_version_num')::integer OPERATOR(pg_catalog.>=) 160000 THEN
        IF NOT pg_catalog.pg_input_is_valid(v_text, 'jsonb') THEN
            RAISE EXCEPTION 'history_track.context is not valid JSON'
                USING ERRCODE = 'invalid_text_representation',
                      DETAIL = pg_catalog.format('The setting holds %L.', pg_catalog.left(v_text, 200)),
                      HINT = 'Set it to a JSON object, e.g. set_config(''history_track.context'', ''{"user": "alice"}'', true), or use set_history_context().';
        END IF;
    END IF;
    v_data := v_text::jsonb;
    IF pg_catalog.jsonb_typeof(v_data) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'history_track.context must be a JSON object, not %', pg_catalog.jsonb_typeof(v_data)
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The setting holds %L.', pg_catalog.left(v_text, 200)),
                  HINT = 'Set it to a JSON object, e.g. {"user": "alice"}.';
    END IF;
    RETURN v_data;
END
$$;

-- Both, as one row: what the generated triggers join to, once per statement.
CREATE FUNCTION history_track._context(OUT context_id uuid, OUT context jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    context := history_track._context_data();
    IF context IS NOT NULL THEN
        context_id := history_track._context_id();
    END IF;
END
$$;

CREATE FUNCTION @extschema@.set_history_context(metadata jsonb) RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_merged jsonb;
BEGIN
    IF metadata IS NULL OR pg_catalog.jsonb_typeof(metadata) OPERATOR(pg_catalog.<>) 'object' THEN
        RAISE EXCEPTION 'context metadata must be a JSON object, not %',
                        COALESCE(pg_catalog.jsonb_typeof(metadata), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an object, e.g. set_history_context(''{"user": "alice"}'').';
    END IF;
    v_merged := COALESCE(history_track._context_data(), '{}'::jsonb) OPERATOR(pg_catalog.||) metadata;
    PERFORM pg_catalog.set_config('history_track.context', v_merged::text, true);
    RETURN history_track._context_id();
END
$$;

COMMENT ON FUNCTION @extschema@.set_history_context(jsonb) IS
    'Merge metadata into the current transaction''s history context and return the context id';
