-- bn128-poseidon8-v2: each published tariff version gets a salt, its salted digest and commitment.
-- Versions published before stay null until first used (the service fills them once). Their
-- unsalted v1 commitments stay published (v1 bundles are checked against them: v1_public); a
-- version published from now on has none in the trust material, as it would let anyone confirm
-- guessed prices. Idempotent (IF NOT EXISTS; the update only touches versions not yet salted),
-- as the upgrade tests of earlier migrations apply it again.
ALTER TABLE "tariffs" ADD COLUMN IF NOT EXISTS "salt" text;--> statement-breakpoint
ALTER TABLE "tariffs" ADD COLUMN IF NOT EXISTS "tariff_digest_v2" text;--> statement-breakpoint
ALTER TABLE "tariffs" ADD COLUMN IF NOT EXISTS "tariff_commitment_v2" text;--> statement-breakpoint
ALTER TABLE "tariffs" ADD COLUMN IF NOT EXISTS "v1_public" boolean DEFAULT false NOT NULL;--> statement-breakpoint
UPDATE "tariffs" SET "v1_public" = true WHERE "salt" IS NULL;
