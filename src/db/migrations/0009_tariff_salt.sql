-- bn128-poseidon8-v2: each published tariff version gets a salt, its salted digest and commitment.
-- Versions published before stay null until first used (the service fills them once). Idempotent
-- (IF NOT EXISTS), as the upgrade tests of earlier migrations apply it again.
ALTER TABLE "tariffs" ADD COLUMN IF NOT EXISTS "salt" text;--> statement-breakpoint
ALTER TABLE "tariffs" ADD COLUMN IF NOT EXISTS "tariff_digest_v2" text;--> statement-breakpoint
ALTER TABLE "tariffs" ADD COLUMN IF NOT EXISTS "tariff_commitment_v2" text;