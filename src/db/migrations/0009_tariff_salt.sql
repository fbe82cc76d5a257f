ALTER TABLE "tariffs" ADD COLUMN "salt" text;--> statement-breakpoint
ALTER TABLE "tariffs" ADD COLUMN "tariff_digest_v2" text;--> statement-breakpoint
ALTER TABLE "tariffs" ADD COLUMN "tariff_commitment_v2" text;