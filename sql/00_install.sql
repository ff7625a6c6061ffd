-- Installing the extension: the version, the public API and nothing else in
-- the user's schema; the internals live in the schema history_track.
\set SHOW_CONTEXT never
CREATE EXTENSION history_track;
SELECT extversion FROM pg_extension WHERE extname = 'history_track';

-- The public API, in the schema the extension was installed into.
SELECT pg_describe_object(classid, objid, objsubid) AS member
  FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'history_track')
   AND deptype = 'e'
   AND classid <> 'pg_type'::regclass  -- a view's row type is a member on 17+ only
   AND pg_describe_object(classid, objid, objsubid) NOT LIKE '%history\_track.%'
 ORDER BY 1;

-- Every function in the public API and in history_track that is SECURITY
-- DEFINER pins its search_path.
SELECT p.oid::regprocedure AS security_definer_function, p.proconfig
  FROM pg_proc p
 WHERE p.prosecdef
   AND p.pronamespace IN ('public'::regnamespace, 'history_track'::regnamespace)
 ORDER BY p.oid::regprocedure::text;
