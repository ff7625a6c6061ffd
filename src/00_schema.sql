-- history_track: row history with triggers.
--
-- This file and the others in src/ are concatenated, in file-name order, into
-- history_track--<version>.sql by the Makefile and by the Python installer.
-- One concern per file:
--   00_schema.sql      the internal schema and conventions
--   10_catalog.sql     the catalog: tracked tables, their columns and trackers,
--                      limits, the log of removed history, hash chains
--   20_util.sql        small helpers: the caller, checks, names, and the
--                      types history is stored as (_stored_type)
--   30_context.sql     where context is read (the only place)
--   35_condition.sql   where a tracker's condition becomes code (the only place)
--   40_generate.sql    where trigger code is generated (the only place)
--   50_api.sql         the public API: track_table, untrack_table, history_trackers
--   60_manual.sql      events recorded by a call: manual events, baselines
--   70_read.sql        reading history: history_as_of (the one replay),
--                      history_events (diffs), history_context_events
--   75_revert.sql      revert_row, revert_table
--   80_lifecycle.sql   event triggers following DDL on tracked and event tables
--   85_protect.sql     protection: append-only event tables, the triggers that
--                      stay, check_history, prune_history, hash chains
--   90_privileges.sql  who may execute what (last, so it covers everything)
--
-- Conventions
--   * Public API names live in the extension's schema (@extschema@); their
--     parameter names are part of the API (tbl, label, ...).
--   * Everything else lives in the schema history_track, private helpers
--     start with "_", their parameters are p_*, local variables v_*.
--   * Dynamic SQL only through format() with %I / %L, never concatenation of
--     names; no text a user typed is ever executed with history_track's
--     privileges (a condition is parsed as its caller: 35_condition.sql).
--   * SECURITY DEFINER functions pin search_path = pg_catalog, pg_temp and say
--     why they need the privilege; every function pins it, and inside it
--     plain = and now() resolve in pg_catalog. The few that cannot pin it
--     (inlined SQL helpers, the context readers of 30_context.sql; named in
--     tests/test_sql_style.py) write OPERATOR(pg_catalog.=) and qualify every
--     function. Generated SQL names its relations with pgh_ prefixed aliases,
--     which no tracked table's column can have.
--   * One job per function; one over ~80 lines says above it why it is long.
--     Lines stay within 140 characters.

\echo Use "CREATE EXTENSION history_track" to load this file. \quit

-- The script itself runs with search_path pinned: CREATE EXTENSION would run
-- it with the extension's schema first, where its owner (public: the database
-- owner's, on PostgreSQL 14 everyone's) may have defined an operator that
-- matches one of the catalog's constraints better than PostgreSQL's own
-- polymorphic one, to run as whoever writes the catalog. (Restored when the
-- script ends; every object of the script names its schema.)
SET LOCAL search_path = pg_catalog, pg_temp;

CREATE SCHEMA history_track;
COMMENT ON SCHEMA history_track IS
    'history_track internals: catalog, generated trigger functions and helpers; not a public API';
REVOKE ALL ON SCHEMA history_track FROM PUBLIC;
GRANT USAGE ON SCHEMA history_track TO PUBLIC;
