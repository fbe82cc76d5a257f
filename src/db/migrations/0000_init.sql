CREATE TABLE "api_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"secret_hash" text NOT NULL,
	"name" text NOT NULL,
	"scopes" jsonb NOT NULL,
	"tenants" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_secret_hash_unique" UNIQUE("secret_hash")
);
--> statement-breakpoint
CREATE TABLE "attestations" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"event_id" text NOT NULL,
	"request_digest" text NOT NULL,
	"statement_digest" text NOT NULL,
	"billing_window_id" text NOT NULL,
	"chain_id" text NOT NULL,
	"seq" bigint NOT NULL,
	"charge_micros" numeric(20, 0) NOT NULL,
	"currency" text NOT NULL,
	"bundle" jsonb NOT NULL,
	"blinding" text NOT NULL,
	"proof_status" text NOT NULL,
	"log_index" bigint,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"cursor" bigserial NOT NULL,
	CONSTRAINT "attestations_statement_digest_unique" UNIQUE("statement_digest")
);
--> statement-breakpoint
CREATE TABLE "chains" (
	"chain_id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"next_seq" bigint NOT NULL,
	"prev_digest" text,
	"cumulative_units" numeric(20, 0) NOT NULL
);
--> statement-breakpoint
CREATE TABLE "log_checkpoints" (
	"tree_size" bigint PRIMARY KEY NOT NULL,
	"root_hash" "bytea" NOT NULL,
	"note" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "log_leaves" (
	"idx" bigint PRIMARY KEY NOT NULL,
	"attestation_id" text NOT NULL,
	"leaf_hash" "bytea" NOT NULL,
	CONSTRAINT "log_leaves_attestation_id_unique" UNIQUE("attestation_id")
);
--> statement-breakpoint
CREATE TABLE "log_nodes" (
	"level" integer NOT NULL,
	"idx" bigint NOT NULL,
	"hash" "bytea" NOT NULL,
	CONSTRAINT "log_nodes_level_idx_pk" PRIMARY KEY("level","idx")
);
--> statement-breakpoint
CREATE TABLE "log_queue" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"attestation_id" text NOT NULL,
	CONSTRAINT "log_queue_attestation_id_unique" UNIQUE("attestation_id")
);
--> statement-breakpoint
CREATE TABLE "proof_jobs" (
	"attestation_id" text PRIMARY KEY NOT NULL,
	"status" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"run_after" timestamp with time zone DEFAULT now() NOT NULL,
	"locked_by" text,
	"locked_at" timestamp with time zone,
	"last_error" text
);
--> statement-breakpoint
CREATE TABLE "revocations" (
	"kind" text NOT NULL,
	"subject" text NOT NULL,
	"effective_at" timestamp with time zone NOT NULL,
	"reason" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "revocations_kind_subject_pk" PRIMARY KEY("kind","subject")
);
--> statement-breakpoint
CREATE TABLE "signing_keys" (
	"kid" text PRIMARY KEY NOT NULL,
	"x" text NOT NULL,
	"valid_from" timestamp with time zone NOT NULL,
	"valid_until" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tariffs" (
	"tariff_id" text NOT NULL,
	"tariff_version" text NOT NULL,
	"snapshot" jsonb NOT NULL,
	"tariff_digest" text NOT NULL,
	"tariff_commitment" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tariffs_tariff_id_tariff_version_pk" PRIMARY KEY("tariff_id","tariff_version")
);
--> statement-breakpoint
CREATE TABLE "tenants" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "attestations_tenant_event" ON "attestations" USING btree ("tenant_id","event_id");--> statement-breakpoint
CREATE INDEX "attestations_tenant_window" ON "attestations" USING btree ("tenant_id","billing_window_id","cursor");--> statement-breakpoint
CREATE INDEX "attestations_tenant_cursor" ON "attestations" USING btree ("tenant_id","cursor");--> statement-breakpoint
CREATE INDEX "proof_jobs_ready" ON "proof_jobs" USING btree ("status","run_after");