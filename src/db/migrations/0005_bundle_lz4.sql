-- Compress stored bundles with lz4 where the server has it (PostgreSQL 14+ built with lz4, as
-- Debian's packages and the official images are). A bundle is ~1.9 kB of JSON, just past the
-- TOAST threshold, so every row is compressed, and pglz_compress was the largest single
-- PostgreSQL function in a perf profile of bench:attest's batch phase; lz4 costs a fraction of
-- it for a similar size. Where lz4 is missing (PGlite, other builds) pglz stays, and so it does on
-- PostgreSQL 13 and older, which have no SET COMPRESSION (the statement is run through EXECUTE so
-- that the block still compiles there). Only values written from now on are affected; both
-- methods are read transparently.
DO $$
BEGIN
  IF current_setting('server_version_num')::int >= 140000 THEN
    EXECUTE 'ALTER TABLE "attestations" ALTER COLUMN "bundle" SET COMPRESSION lz4';
  END IF;
EXCEPTION WHEN feature_not_supported THEN
  NULL;
END $$;
