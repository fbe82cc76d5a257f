ALTER TABLE "log_queue" DROP CONSTRAINT "log_queue_attestation_id_unique";--> statement-breakpoint
-- Level 0 of the log tree (the leaf hashes) is read from log_leaves; log_nodes keeps levels >= 1.
DELETE FROM "log_nodes" WHERE "level" = 0;
