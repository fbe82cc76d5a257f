-- Stored bundles as json (their text, checked to be JSON) instead of jsonb. The attest statement
-- used to pass every bundle inside its jsonb rows parameter, and building jsonb (parsing, key
-- sorting, de-escaping every string character by character) was the largest single PostgreSQL
-- cost of attesting: ~20 µs per event of a 250-event statement, replayed in isolation on the
-- session-6 machine. Now the bundles travel as one text parameter, separated by U+001E (JSON
-- text never holds it unescaped) and zipped to their rows by position, and json only checks
-- them: ~5 µs per event. The service always reads the column whole; `->` and `->>` work on json
-- as on jsonb. Existing rows are rewritten (jsonb's text form: same values, keys in jsonb's
-- order). The rewrite locks the table for its duration (docs/operations.md, "Upgrading").
-- The type change resets the column's compression and recompresses every row with the default
-- (pglz): where the server has lz4 (migration 0005), both go in one ALTER so the rewritten rows
-- are lz4 too. PostgreSQL 13 and older have no SET COMPRESSION; builds without lz4 refuse it
-- (feature_not_supported): they get the plain type change.
DO $$
BEGIN
  IF current_setting('server_version_num')::int >= 140000 THEN
    BEGIN
      EXECUTE 'ALTER TABLE "attestations" ALTER COLUMN "bundle" SET DATA TYPE json USING "bundle"::json, ALTER COLUMN "bundle" SET COMPRESSION lz4';
      RETURN;
    EXCEPTION WHEN feature_not_supported THEN
      NULL;
    END;
  END IF;
  ALTER TABLE "attestations" ALTER COLUMN "bundle" SET DATA TYPE json USING "bundle"::json;
END $$;
