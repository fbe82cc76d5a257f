// The one drizzle schema (PostgreSQL dialect; PGlite runs the same migrations).
// u64 quantities are numeric(20,0) (Postgres bigint is signed); log positions are bigint.
import { sql } from 'drizzle-orm';
import { bigint, bigserial, boolean, check, customType, doublePrecision, foreignKey, index, integer, json, jsonb, numeric, pgTable, primaryKey, smallint, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (v) => new Uint8Array(v),
  toDriver: (v) => Buffer.from(v),
});
const u64 = (name: string) => numeric(name, { precision: 20, scale: 0 });
const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const tenants = pgTable(
  'tenants',
  {
    id: text('id').primaryKey(),
    name: text('name').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    /** When an attestation is proved (src/service/proof-policy.ts): eager | on_demand | sampled. */
    proofPolicy: text('proof_policy').notNull().default('eager'),
    /** The share of events proved at attest time under `sampled` (0 < rate ≤ 1); null otherwise. */
    proofSampleRate: doublePrecision('proof_sample_rate'),
    proofPolicyUpdatedAt: ts('proof_policy_updated_at'),
    /** Bilateral metering: from this instant on the tenant's events need a consumer PoP (null:
     *  a PoP is optional). */
    popRequiredSince: ts('pop_required_since'),
  },
  (t) => [
    check('tenants_proof_policy', sql`${t.proofPolicy} in ('eager', 'on_demand', 'sampled')`),
    check('tenants_proof_sample_rate', sql`(${t.proofPolicy} = 'sampled') = (${t.proofSampleRate} is not null) and (${t.proofSampleRate} is null or (${t.proofSampleRate} > 0 and ${t.proofSampleRate} <= 1))`),
  ],
);

export const apiKeys = pgTable('api_keys', {
  id: text('id').primaryKey(),
  /** sha256 of the secret; the secret itself is shown once and never stored. */
  secretHash: text('secret_hash').notNull().unique(),
  name: text('name').notNull(),
  scopes: jsonb('scopes').$type<string[]>().notNull(),
  /** null: every tenant; otherwise the tenants this key may act for. */
  tenants: jsonb('tenants').$type<string[] | null>(),
  createdAt: ts('created_at').notNull().defaultNow(),
  revokedAt: ts('revoked_at'),
  /** A consumer-scoped key: reads only the attestations whose PoP this consumer signed (its one
   *  tenant is in `tenants`). */
  consumerId: text('consumer_id'),
});

/** Consumers of a tenant (bilateral metering): they sign PoPs and countersignatures. */
export const consumers = pgTable(
  'consumers',
  {
    tenantId: text('tenant_id').notNull(),
    consumerId: text('consumer_id').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.consumerId] })],
);

/** A consumer's Ed25519 public keys; kid is the RFC 7638 thumbprint. A key signs within
 *  [valid_from, valid_until): rotation and revocation set valid_until. */
export const consumerKeys = pgTable(
  'consumer_keys',
  {
    tenantId: text('tenant_id').notNull(),
    consumerId: text('consumer_id').notNull(),
    kid: text('kid').notNull(),
    x: text('x').notNull(),
    validFrom: ts('valid_from').notNull(),
    validUntil: ts('valid_until'),
    revokedAt: ts('revoked_at'),
    revocationReason: text('revocation_reason'),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.consumerId, t.kid] })],
);

/** Every PoP nonce accepted, once per (tenant, consumer): the primary key is what refuses a
 *  replay, in every process sharing the store. The event and request digest recognise a retry
 *  of the same request. */
export const consumerPopNonces = pgTable(
  'consumer_pop_nonces',
  {
    tenantId: text('tenant_id').notNull(),
    consumerId: text('consumer_id').notNull(),
    nonce: text('nonce').notNull(),
    eventId: text('event_id').notNull(),
    requestDigest: text('request_digest').notNull(),
    signature: text('signature').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.consumerId, t.nonce] })],
);

/** Consumers' countersignatures of attestations (returned in the bundle). */
export const countersignatures = pgTable(
  'countersignatures',
  {
    attestationId: text('attestation_id').notNull(),
    tenantId: text('tenant_id').notNull(),
    consumerId: text('consumer_id').notNull(),
    keyId: text('key_id').notNull(),
    /** As signed (the exact RFC 3339 text). */
    signedAt: text('signed_at').notNull(),
    signature: text('signature').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.attestationId, t.consumerId, t.keyId] })],
);

export const tariffs = pgTable(
  'tariffs',
  {
    tariffId: text('tariff_id').notNull(),
    tariffVersion: text('tariff_version').notNull(),
    snapshot: jsonb('snapshot').notNull(),
    tariffDigest: text('tariff_digest').notNull(),
    tariffCommitment: text('tariff_commitment').notNull(),
    /** bn128-poseidon8-v2: the version's salt (a field element, decimal), its salted digest and
     *  commitment. Null on versions published before v2 until first used (filled then, once). */
    salt: text('salt'),
    tariffDigestV2: text('tariff_digest_v2'),
    tariffCommitmentV2: text('tariff_commitment_v2'),
    /** Whether the unsalted v1 commitment is published in the trust material: only for versions
     *  published before v2 (v1 bundles may use them). For later versions it would let anyone
     *  confirm guessed prices, so it stays private. */
    v1Public: boolean('v1_public').notNull().default(false),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tariffId, t.tariffVersion] })],
);

/** A tenant's default tariff per meter: used when an attest request names no tariff (CloudEvents
 *  structured and batched mode, or a plain request without one). `meter` is a CloudEvents `type`,
 *  an endpoint, or `*` for every other meter; the named version must be published. */
export const defaultTariffs = pgTable(
  'default_tariffs',
  {
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    meter: text('meter').notNull(),
    tariffId: text('tariff_id').notNull(),
    tariffVersion: text('tariff_version').notNull(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.meter] }),
    foreignKey({ columns: [t.tariffId, t.tariffVersion], foreignColumns: [tariffs.tariffId, tariffs.tariffVersion] }),
  ],
);

/** Public half and validity window of each statement-signing key; private keys live in the data directory. */
export const signingKeys = pgTable('signing_keys', {
  kid: text('kid').primaryKey(),
  x: text('x').notNull(),
  validFrom: ts('valid_from').notNull(),
  validUntil: ts('valid_until'),
  createdAt: ts('created_at').notNull().defaultNow(),
});

/** Head of each hash-linked chain (tenant, meter, window). */
export const chains = pgTable('chains', {
  chainId: text('chain_id').primaryKey(),
  tenantId: text('tenant_id').notNull(),
  nextSeq: bigint('next_seq', { mode: 'bigint' }).notNull(),
  prevDigest: text('prev_digest'),
  cumulativeUnits: u64('cumulative_units').notNull(),
});

export const attestations = pgTable(
  'attestations',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull(),
    eventId: text('event_id').notNull(),
    /** Digest of the normalized request (event + tariff): an exact replay has the same one. */
    requestDigest: text('request_digest').notNull(),
    /** `sha256:` + id (the id is the digest's hex, so the primary key already makes it unique). */
    statementDigest: text('statement_digest').notNull(),
    billingWindowId: text('billing_window_id').notNull(),
    chainId: text('chain_id').notNull(),
    seq: bigint('seq', { mode: 'bigint' }).notNull(),
    chargeMicros: u64('charge_micros').notNull(),
    currency: text('currency').notNull(),
    /** The bundle without receipt; billing_proof is added when the proof job finishes. */
    bundle: json('bundle').notNull(),
    /** Blinding of the event commitment (private; in the full bundle once proved). */
    blinding: text('blinding').notNull(),
    /** pending (a proof job exists) | proved | failed | on_demand (no job: proved when asked) |
     *  deferred (an eager job not queued because the queue was over PROOF_QUEUE_LIMIT). The
     *  bundle's own proof_status stays `pending` for the last two (protocol §2.9). */
    proofStatus: text('proof_status').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    /** The meter event's event_timestamp (also in the bundle), so that a settlement run finds its
     *  window's first event without parsing every bundle. Null in rows stored before migration
     *  0021: readers fall back to the bundle. */
    eventAt: ts('event_at'),
    /** Monotonic cursor for pagination. */
    cursor: bigserial('cursor', { mode: 'number' }).notNull(),
  },
  (t) => [
    uniqueIndex('attestations_tenant_event').on(t.tenantId, t.eventId),
    // a chain never forks: one statement per (chain, seq), whatever a writer does
    uniqueIndex('attestations_chain_seq').on(t.chainId, t.seq),
    index('attestations_tenant_window').on(t.tenantId, t.billingWindowId, t.cursor),
    index('attestations_tenant_cursor').on(t.tenantId, t.cursor),
    // the sweeper's work list: deferred attestations, oldest first (few rows; on_demand ones are not indexed)
    index('attestations_deferred').on(t.cursor).where(sql`${t.proofStatus} = 'deferred'`),
  ],
);

export const proofJobs = pgTable(
  'proof_jobs',
  {
    attestationId: text('attestation_id').primaryKey(),
    status: text('status').notNull(), // queued | running | done | failed
    attempts: integer('attempts').notNull().default(0),
    runAfter: ts('run_after').notNull().defaultNow(),
    lockedBy: text('locked_by'),
    lockedAt: ts('locked_at'),
    lastError: text('last_error'),
    /** When the job was queued (at attest, or later: proved on demand, a deferred one re-queued):
     *  the backlog's oldest age is measured from it. */
    queuedAt: ts('queued_at').notNull().defaultNow(),
  },
  (t) => [index('proof_jobs_ready').on(t.status, t.runAfter)],
);

/** Standard Webhooks endpoints. The secret signs every delivery, so it is kept (as a signing
 *  key is); it is shown once, at creation. `events`: the event types it receives. */
export const webhookEndpoints = pgTable('webhook_endpoints', {
  id: text('id').primaryKey(),
  /** null: events of every tenant. */
  tenantId: text('tenant_id'),
  url: text('url').notNull(),
  secret: text('secret').notNull(),
  events: jsonb('events').$type<string[]>().notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
  disabledAt: ts('disabled_at'),
});

/** The webhook outbox: one row per (message, endpoint), written in the transaction that changes
 *  the state it reports, delivered and retried by the deliverer. `body` is sent byte for byte on
 *  every attempt; the id (`webhook-id`) stays the same, so receivers can drop repeats. */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    endpointId: text('endpoint_id').notNull(),
    eventType: text('event_type').notNull(),
    body: text('body').notNull(),
    status: text('status').notNull(), // pending | delivered | failed
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: ts('next_attempt_at').notNull().defaultNow(),
    lastStatus: integer('last_status'),
    lastError: text('last_error'),
    createdAt: ts('created_at').notNull().defaultNow(),
    deliveredAt: ts('delivered_at'),
  },
  (t) => [index('webhook_deliveries_due').on(t.status, t.nextAttemptAt), index('webhook_deliveries_endpoint').on(t.endpointId, t.createdAt)],
);

/** Attestations acknowledged but not yet integrated into the log. */
export const logQueue = pgTable('log_queue', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  /** Not indexed: a queue row is written by the statement that inserts its attestation (whose id
   *  is the primary key), so it does not repeat, and nothing looks a queue row up by it. Should a
   *  repeat appear anyway, the sequencer logs the attestation once and drops the repeat. */
  attestationId: text('attestation_id').notNull(),
  /** RFC 9162 leaf hash of the statement's canonical bytes, computed when the attestation is
   *  written (null only for rows queued before this column existed: computed then from the bundle). */
  leafHash: bytea('leaf_hash'),
});

/** Log leaves: index → the canonical statement bytes' leaf hash. */
export const logLeaves = pgTable('log_leaves', {
  idx: bigint('idx', { mode: 'number' }).primaryKey(),
  attestationId: text('attestation_id').notNull().unique(),
  leafHash: bytea('leaf_hash').notNull(),
});

/** Hashes of perfect subtrees above the leaves: (level, index) = hash of leaves
 *  [index·2^level, (index+1)·2^level), level ≥ 1. Level 0 (the leaf hashes) is log_leaves. */
export const logNodes = pgTable(
  'log_nodes',
  {
    level: integer('level').notNull(),
    idx: bigint('idx', { mode: 'number' }).notNull(),
    hash: bytea('hash').notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.level, t.idx] }),
    // level 0 is log_leaves: a process of a version before migration 0004 (which wrote leaf hashes
    // here too) fails loudly instead of writing them
    check('log_nodes_above_leaves', sql`${t.level} > 0`),
  ],
);

export const logCheckpoints = pgTable('log_checkpoints', {
  treeSize: bigint('tree_size', { mode: 'number' }).primaryKey(),
  rootHash: bytea('root_hash').notNull(),
  note: text('note').notNull(),
  createdAt: ts('created_at').notNull().defaultNow(),
});

export const revocations = pgTable(
  'revocations',
  {
    kind: text('kind').notNull(), // key | attestation
    subject: text('subject').notNull(), // kid or statement digest
    effectiveAt: ts('effective_at').notNull(),
    reason: text('reason').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.kind, t.subject] })],
);

/** One row: the revocation list's sequence, raised in the transaction of every change to
 *  `revocations` (the row lock orders concurrent changes, across processes, by commit). */
export const revocationListState = pgTable(
  'revocation_list_state',
  {
    id: smallint('id').primaryKey().default(1),
    sequence: bigint('sequence', { mode: 'bigint' }).notNull(),
  },
  (t) => [check('revocation_list_state_one_row', sql`${t.id} = 1`)],
);

/** Published plan versions (immutable, like tariffs): the canonical plan and its digest. */
export const plans = pgTable(
  'plans',
  {
    planId: text('plan_id').notNull(),
    planVersion: text('plan_version').notNull(),
    plan: jsonb('plan').notNull(),
    planDigest: text('plan_digest').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.planId, t.planVersion] })],
);

/** A tenant's plan version from a date on; the latest effective_from at or before a time is in effect. */
export const subscriptions = pgTable(
  'subscriptions',
  {
    tenantId: text('tenant_id').notNull(),
    effectiveFrom: ts('effective_from').notNull(),
    planId: text('plan_id').notNull(),
    planVersion: text('plan_version').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.effectiveFrom] })],
);

/** Settlement runs. A live run (running, or settled while its settlement is not void) seals its
 *  tenant's window: the attest statement refuses events for it (PERIOD_SETTLED). */
export const settlementRuns = pgTable(
  'settlement_runs',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull(),
    billingWindowId: text('billing_window_id').notNull(),
    status: text('status').notNull(), // running | settled | failed | voided
    errorCode: text('error_code'),
    errorDetail: text('error_detail'),
    settlementId: text('settlement_id'),
    actor: text('actor').notNull(),
    startedAt: ts('started_at').notNull().defaultNow(),
    finishedAt: ts('finished_at'),
    /** The late-event policy of the window's plan (refuse | next_period): with next_period a live
     *  run does not refuse the window's events; they are late, for the tenant's next run. */
    lateEvents: text('late_events').notNull().default('refuse'),
    /** The tenant's highest attestation cursor at the seal: the run settles the window's
     *  attestations up to it; later ones of the window are late. */
    sealedCursor: bigint('sealed_cursor', { mode: 'number' }),
    /** The window's chains and their next seq at the seal. */
    sealedHeads: jsonb('sealed_heads').$type<Record<string, string>>(),
  },
  (t) => [
    uniqueIndex('settlement_runs_live').on(t.tenantId, t.billingWindowId).where(sql`${t.status} in ('running', 'settled')`),
    check('settlement_runs_status', sql`${t.status} in ('running', 'settled', 'failed', 'voided')`),
  ],
);

/** Settlement statements, signed and immutable: a trigger refuses DELETE, and UPDATE of anything
 *  but status and status_changed_at (and any change of a paid or void settlement). */
export const settlements = pgTable(
  'settlements',
  {
    /** The content hash's hex (statement_digest without `sha256:`). */
    id: text('id').primaryKey(),
    runId: text('run_id').notNull(),
    tenantId: text('tenant_id').notNull(),
    billingWindowId: text('billing_window_id').notNull(),
    planId: text('plan_id').notNull(),
    planVersion: text('plan_version').notNull(),
    planDigest: text('plan_digest').notNull(),
    statementDigest: text('statement_digest').notNull(),
    /** The signed statement as JSON text. */
    statement: json('statement').notNull(),
    keyId: text('key_id').notNull(),
    signature: text('signature').notNull(),
    totalMicros: numeric('total_micros', { precision: 40, scale: 0 }).notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    status: text('status').notNull(),
    statusChangedAt: ts('status_changed_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('settlements_live').on(t.tenantId, t.billingWindowId).where(sql`${t.status} <> 'void'`),
    check('settlements_status', sql`${t.status} in ('pending', 'invoiced', 'disputed', 'paid', 'void')`),
  ],
);

/** Signed adjustment lines (credits and debits), immutable (a trigger refuses UPDATE and DELETE).
 *  The tenant's next settlement run claims the unclaimed ones (settlement_claims, keyed
 *  `adjustment:<id>`). */
export const settlementAdjustments = pgTable(
  'settlement_adjustments',
  {
    /** The content hash's hex (adjustment_digest without `sha256:`). */
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull(),
    adjustmentDigest: text('adjustment_digest').notNull(),
    adjustment: json('adjustment').notNull(),
    keyId: text('key_id').notNull(),
    signature: text('signature').notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    /** The request's Idempotency-Key header, when it had one: a retry with the same key is
     *  answered with this adjustment instead of signing a second one. */
    idempotencyKey: text('idempotency_key'),
    /** The digest of the request's validated body, to tell a retry from another request reusing
     *  the key (IDEMPOTENCY_CONFLICT). Set with idempotency_key. */
    requestDigest: text('request_digest'),
  },
  (t) => [
    index('settlement_adjustments_tenant').on(t.tenantId, t.id),
    uniqueIndex('settlement_adjustments_idempotency').on(t.tenantId, t.idempotencyKey).where(sql`${t.idempotencyKey} is not null`),
  ],
);

/** Which settlement holds each attestation: at most one live settlement (the primary key); the
 *  claims of a settlement are removed when it is voided. */
export const settlementClaims = pgTable(
  'settlement_claims',
  {
    attestationId: text('attestation_id').primaryKey(),
    settlementId: text('settlement_id')
      .notNull()
      .references(() => settlements.id),
  },
  (t) => [index('settlement_claims_settlement').on(t.settlementId)],
);

/** Every status change of a settlement: when, by whom, from and to. */
export const settlementStatusChanges = pgTable(
  'settlement_status_changes',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    settlementId: text('settlement_id')
      .notNull()
      .references(() => settlements.id),
    fromStatus: text('from_status'),
    toStatus: text('to_status').notNull(),
    actor: text('actor').notNull(),
    reason: text('reason'),
    changedAt: ts('changed_at').notNull().defaultNow(),
  },
  (t) => [index('settlement_status_changes_settlement').on(t.settlementId, t.id)],
);
