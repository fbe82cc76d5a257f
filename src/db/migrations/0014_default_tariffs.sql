-- A tenant's default tariff per meter (a CloudEvents type, an endpoint, or * for every other meter):
-- used when an attest request names no tariff. The named version must be published. Idempotent.
CREATE TABLE IF NOT EXISTS "default_tariffs" (
	"tenant_id" text NOT NULL,
	"meter" text NOT NULL,
	"tariff_id" text NOT NULL,
	"tariff_version" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "default_tariffs_tenant_id_meter_pk" PRIMARY KEY("tenant_id","meter"),
	CONSTRAINT "default_tariffs_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action,
	CONSTRAINT "default_tariffs_tariff_id_tariff_version_tariffs_tariff_id_tariff_version_fk" FOREIGN KEY ("tariff_id","tariff_version") REFERENCES "public"."tariffs"("tariff_id","tariff_version") ON DELETE no action ON UPDATE no action
);
