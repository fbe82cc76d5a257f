-- An adjustment request's Idempotency-Key and the digest of its body: a retried request is
-- answered with the adjustment its first attempt signed instead of signing a second credit.
-- Rows stored before this migration have neither (they were made without a key).
ALTER TABLE "settlement_adjustments" ADD COLUMN IF NOT EXISTS "idempotency_key" text;--> statement-breakpoint
ALTER TABLE "settlement_adjustments" ADD COLUMN IF NOT EXISTS "request_digest" text;--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "settlement_adjustments_idempotency" ON "settlement_adjustments" USING btree ("tenant_id","idempotency_key") WHERE "settlement_adjustments"."idempotency_key" is not null;
