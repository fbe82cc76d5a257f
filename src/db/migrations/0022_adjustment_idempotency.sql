ALTER TABLE "settlement_adjustments" ADD COLUMN "idempotency_key" text;--> statement-breakpoint
ALTER TABLE "settlement_adjustments" ADD COLUMN "request_digest" text;--> statement-breakpoint
CREATE UNIQUE INDEX "settlement_adjustments_idempotency" ON "settlement_adjustments" USING btree ("tenant_id","idempotency_key") WHERE "settlement_adjustments"."idempotency_key" is not null;