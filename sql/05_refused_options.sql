-- Bad options are refused at the call, with a SQLSTATE, DETAIL and HINT, and
-- leave nothing behind; hostile labels and conditions never run as SQL.
\set SHOW_CONTEXT never
CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric);

SELECT track_table('accounts', label => 'x', condition => 'OLD.nope = 1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- A condition that could never hold: OLD in an insert tracker, NEW in a delete tracker.
SELECT track_table('accounts', label => 'x', operations => '{insert}', condition => 'OLD.balance > 0');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', operations => '{delete}', condition => 'NEW.balance > 0');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', condition => 'NEW.balance +');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', condition => 'NEW.balance');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', condition => 'true)) OR ((false');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', condition => 'true; DROP TABLE accounts; --');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', condition => E'true\n); DROP TABLE accounts; --');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', condition => 'NEW.id IN (SELECT 1)');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', condition => 'random() < 0.5');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', condition => '   ');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', condition => 'status = 1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', changed => '{nope}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', columns => '{id,Owner}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', exclude => '{id,owner,balance}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', operations => '{insert,upsert}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', operations => '{}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', snapshot => 'newest');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', snapshot => 'old', operations => '{insert,update}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', snapshot => 'new', operations => '{update,delete}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'x', operations => '{insert}', changed => '{owner}');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => '');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', label => 'update', condition => 'true');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT track_table('accounts', condition => 'true');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Nothing was created by the refused calls.
SELECT count(*) AS catalog_rows FROM history_track.tracked_table;
SELECT to_regclass('accounts_event') AS event_table;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'accounts'::regclass;

-- A hostile label is only ever data.
SELECT track_table('accounts', label => $$'); DROP TABLE accounts; --$$, operations => '{insert}');
INSERT INTO accounts VALUES (1, 'o''brien', 10);
SELECT pgh_label, owner FROM accounts_event;
-- Comments and quotes inside a condition stay inside it.
SELECT track_table('accounts', label => 'rich', operations => '{update}',
                   condition => E'NEW.balance > 100 -- a comment\n AND NEW.owner <> \'x;y\' /* another */');
UPDATE accounts SET balance = 1000;
SELECT pgh_label, balance FROM accounts_event ORDER BY pgh_id;
SELECT untrack_table('accounts', drop_events => true);
DROP TABLE accounts;
