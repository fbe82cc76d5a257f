-- Settlement (docs/protocol.md §5): published plans, subscriptions, settlement runs, the signed
-- and immutable settlement statements, the claims that keep each attestation in at most one live
-- settlement, and every status change. Idempotent (IF NOT EXISTS, guarded constraints, CREATE OR
-- REPLACE), as the upgrade tests apply migrations again.
CREATE TABLE IF NOT EXISTS "plans" (
	"plan_id" text NOT NULL,
	"plan_version" text NOT NULL,
	"plan" jsonb NOT NULL,
	"plan_digest" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "plans_plan_id_plan_version_pk" PRIMARY KEY("plan_id","plan_version")
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "settlement_claims" (
	"attestation_id" text PRIMARY KEY NOT NULL,
	"settlement_id" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "settlement_runs" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"billing_window_id" text NOT NULL,
	"status" text NOT NULL,
	"error_code" text,
	"error_detail" text,
	"settlement_id" text,
	"actor" text NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "settlement_runs_status" CHECK ("settlement_runs"."status" in ('running', 'settled', 'failed', 'voided'))
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "settlement_status_changes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"settlement_id" text NOT NULL,
	"from_status" text,
	"to_status" text NOT NULL,
	"actor" text NOT NULL,
	"reason" text,
	"changed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "settlements" (
	"id" text PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"billing_window_id" text NOT NULL,
	"plan_id" text NOT NULL,
	"plan_version" text NOT NULL,
	"plan_digest" text NOT NULL,
	"statement_digest" text NOT NULL,
	"statement" json NOT NULL,
	"key_id" text NOT NULL,
	"signature" text NOT NULL,
	"total_micros" numeric(40, 0) NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"status" text NOT NULL,
	"status_changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "settlements_status" CHECK ("settlements"."status" in ('pending', 'invoiced', 'disputed', 'paid', 'void'))
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "subscriptions" (
	"tenant_id" text NOT NULL,
	"effective_from" timestamp with time zone NOT NULL,
	"plan_id" text NOT NULL,
	"plan_version" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "subscriptions_tenant_id_effective_from_pk" PRIMARY KEY("tenant_id","effective_from")
);
--> statement-breakpoint
DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'settlement_claims_settlement_id_settlements_id_fk') THEN ALTER TABLE "settlement_claims" ADD CONSTRAINT "settlement_claims_settlement_id_settlements_id_fk" FOREIGN KEY ("settlement_id") REFERENCES "public"."settlements"("id") ON DELETE no action ON UPDATE no action; END IF; END $$;--> statement-breakpoint
DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'settlement_status_changes_settlement_id_settlements_id_fk') THEN ALTER TABLE "settlement_status_changes" ADD CONSTRAINT "settlement_status_changes_settlement_id_settlements_id_fk" FOREIGN KEY ("settlement_id") REFERENCES "public"."settlements"("id") ON DELETE no action ON UPDATE no action; END IF; END $$;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "settlement_claims_settlement" ON "settlement_claims" USING btree ("settlement_id");--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "settlement_runs_live" ON "settlement_runs" USING btree ("tenant_id","billing_window_id") WHERE "settlement_runs"."status" in ('running', 'settled');--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "settlement_status_changes_settlement" ON "settlement_status_changes" USING btree ("settlement_id","id");--> statement-breakpoint
CREATE UNIQUE INDEX IF NOT EXISTS "settlements_live" ON "settlements" USING btree ("tenant_id","billing_window_id") WHERE "settlements"."status" <> 'void';
--> statement-breakpoint
-- Settlements are immutable: DELETE is refused; UPDATE may change only status and
-- status_changed_at, and a paid or void settlement not even those (final states).
CREATE OR REPLACE FUNCTION "settlements_immutable"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'settlements are immutable: DELETE refused' USING ERRCODE = 'raise_exception', HINT = 'SETTLEMENT_IMMUTABLE';
  END IF;
  IF (to_jsonb(NEW) - 'status' - 'status_changed_at') IS DISTINCT FROM (to_jsonb(OLD) - 'status' - 'status_changed_at') THEN
    RAISE EXCEPTION 'settlements are immutable: only status and status_changed_at may change' USING ERRCODE = 'raise_exception', HINT = 'SETTLEMENT_IMMUTABLE';
  END IF;
  IF OLD.status IN ('paid', 'void') AND (NEW.status IS DISTINCT FROM OLD.status OR NEW.status_changed_at IS DISTINCT FROM OLD.status_changed_at) THEN
    RAISE EXCEPTION 'settlement status % is final', OLD.status USING ERRCODE = 'raise_exception', HINT = 'SETTLEMENT_IMMUTABLE';
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
DROP TRIGGER IF EXISTS "settlements_immutable" ON "settlements";
--> statement-breakpoint
CREATE TRIGGER "settlements_immutable" BEFORE UPDATE OR DELETE ON "settlements" FOR EACH ROW EXECUTE FUNCTION "settlements_immutable"();
