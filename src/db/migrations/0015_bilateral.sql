-- Bilateral metering: consumers of a tenant and their Ed25519 keys, the PoP nonces accepted (the
-- primary key refuses a replayed nonce per tenant and consumer, across processes), consumers'
-- countersignatures, consumer-scoped API keys and each tenant's PoP requirement. Idempotent.
CREATE TABLE IF NOT EXISTS "consumer_keys" (
	"tenant_id" text NOT NULL,
	"consumer_id" text NOT NULL,
	"kid" text NOT NULL,
	"x" text NOT NULL,
	"valid_from" timestamp with time zone NOT NULL,
	"valid_until" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"revocation_reason" text,
	CONSTRAINT "consumer_keys_tenant_id_consumer_id_kid_pk" PRIMARY KEY("tenant_id","consumer_id","kid")
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "consumer_pop_nonces" (
	"tenant_id" text NOT NULL,
	"consumer_id" text NOT NULL,
	"nonce" text NOT NULL,
	"event_id" text NOT NULL,
	"request_digest" text NOT NULL,
	"signature" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "consumer_pop_nonces_tenant_id_consumer_id_nonce_pk" PRIMARY KEY("tenant_id","consumer_id","nonce")
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "consumers" (
	"tenant_id" text NOT NULL,
	"consumer_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "consumers_tenant_id_consumer_id_pk" PRIMARY KEY("tenant_id","consumer_id")
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "countersignatures" (
	"attestation_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"consumer_id" text NOT NULL,
	"key_id" text NOT NULL,
	"signed_at" text NOT NULL,
	"signature" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "countersignatures_attestation_id_consumer_id_key_id_pk" PRIMARY KEY("attestation_id","consumer_id","key_id")
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN IF NOT EXISTS "consumer_id" text;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN IF NOT EXISTS "pop_required_since" timestamp with time zone;