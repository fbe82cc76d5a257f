ALTER TABLE "log_queue" ADD COLUMN "leaf_hash" "bytea";--> statement-breakpoint
ALTER TABLE "attestations" DROP COLUMN "log_index";