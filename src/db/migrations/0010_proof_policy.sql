-- Proof policies (docs/operations.md, "Proof policies"): each tenant says when its attestations
-- are proved (eager, on_demand, or sampled at a rate), and an attestation's proof_status may now
-- also be on_demand (no job: proved when asked) or deferred (an eager job not queued because the
-- proof queue was over its limit; the sweeper queues it later). A partial index lists the deferred
-- ones for the sweeper; a proof job records when it was queued (the backlog's age). Idempotent (IF NOT EXISTS; each constraint dropped before it is added), as
-- the upgrade tests of earlier migrations apply it again.
ALTER TABLE "tenants" ADD COLUMN IF NOT EXISTS "proof_policy" text DEFAULT 'eager' NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN IF NOT EXISTS "proof_sample_rate" double precision;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN IF NOT EXISTS "proof_policy_updated_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "attestations_deferred" ON "attestations" USING btree ("cursor") WHERE "attestations"."proof_status" = 'deferred';--> statement-breakpoint
ALTER TABLE "proof_jobs" ADD COLUMN IF NOT EXISTS "queued_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" DROP CONSTRAINT IF EXISTS "tenants_proof_policy";--> statement-breakpoint
ALTER TABLE "tenants" ADD CONSTRAINT "tenants_proof_policy" CHECK ("tenants"."proof_policy" in ('eager', 'on_demand', 'sampled'));--> statement-breakpoint
ALTER TABLE "tenants" DROP CONSTRAINT IF EXISTS "tenants_proof_sample_rate";--> statement-breakpoint
ALTER TABLE "tenants" ADD CONSTRAINT "tenants_proof_sample_rate" CHECK (("tenants"."proof_policy" = 'sampled') = ("tenants"."proof_sample_rate" is not null) and ("tenants"."proof_sample_rate" is null or ("tenants"."proof_sample_rate" > 0 and "tenants"."proof_sample_rate" <= 1)));
