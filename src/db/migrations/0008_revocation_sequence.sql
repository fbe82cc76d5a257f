-- The revocation list's sequence number (docs/protocol.md §2.11): one row, raised in the same
-- transaction as every change to "revocations". Lists served before this migration carried no
-- sequence; the first sequence is the number of revocations already made (0 when none), so a
-- database with revocations never serves a sequence-0 list that has entries. Idempotent: it
-- keeps an existing sequence when applied again (as the upgrade tests of earlier migrations do).
CREATE TABLE IF NOT EXISTS "revocation_list_state" (
	"id" smallint PRIMARY KEY DEFAULT 1 NOT NULL,
	"sequence" bigint NOT NULL,
	CONSTRAINT "revocation_list_state_one_row" CHECK ("revocation_list_state"."id" = 1)
);
--> statement-breakpoint
INSERT INTO "revocation_list_state" ("id", "sequence") SELECT 1, count(*) FROM "revocations" ON CONFLICT ("id") DO NOTHING;
