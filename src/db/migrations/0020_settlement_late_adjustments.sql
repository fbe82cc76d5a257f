CREATE TABLE IF NOT EXISTS "settlement_adjustments" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"adjustment_digest" text NOT NULL,
	"adjustment" json NOT NULL,
	"key_id" text NOT NULL,
	"signature" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "settlement_runs" ADD COLUMN IF NOT EXISTS "late_events" text DEFAULT 'refuse' NOT NULL;--> statement-breakpoint
ALTER TABLE "settlement_runs" ADD COLUMN IF NOT EXISTS "sealed_cursor" bigint;--> statement-breakpoint
ALTER TABLE "settlement_runs" ADD COLUMN IF NOT EXISTS "sealed_heads" jsonb;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "settlement_adjustments_tenant" ON "settlement_adjustments" USING btree ("tenant_id","id");
--> statement-breakpoint
-- Adjustments are signed and immutable: UPDATE and DELETE are refused.
CREATE OR REPLACE FUNCTION "settlement_adjustments_immutable"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'settlement adjustments are immutable: % refused', TG_OP USING ERRCODE = 'raise_exception', HINT = 'SETTLEMENT_IMMUTABLE';
END
$$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS "settlement_adjustments_immutable" ON "settlement_adjustments";
--> statement-breakpoint
CREATE TRIGGER "settlement_adjustments_immutable" BEFORE UPDATE OR DELETE ON "settlement_adjustments" FOR EACH ROW EXECUTE FUNCTION "settlement_adjustments_immutable"();
