// Composition: builds every service over one database and returns the app's dependencies.
// `src/cli/serve.ts` calls it with real parts; tests call it with a PGlite or Postgres store.
import fs from 'node:fs';
import path from 'node:path';
import type { TrustMaterial } from '../core/trust.ts';
import { BINDING_VERSION, BINDING_VERSION_V2, type TariffSnapshot, type VerificationReport } from '../core/schemas.ts';
import type { SigningKey } from '../core/keys.ts';
import type { Database, Db } from '../db/index.ts';
import type { LogApi } from '../log/api.ts';
import { verify } from '../verifier/index.ts';
import type { BatchItem } from '../verifier/batch.ts';
import { createVerifyPool, type VerifyPool } from '../verifier/pool.ts';
import { AdminService } from './admin.ts';
import { AttestService } from './attest.ts';
import { Auth, hashSecret } from './auth.ts';
import { KeyRing } from './keyring.ts';
import { ProofQueue } from './proofs.ts';
import { ProofPolicyService, loadOrCreateSamplingSecret } from './proof-policy.ts';
import { WebhookService } from './webhooks.ts';
import { TariffService } from './tariffs.ts';
import { PlanService } from './plans.ts';
import { SettlementService } from './settlements.ts';
import { RevocationService } from './revocations.ts';
import { Metrics } from './metrics.ts';
import { SyncWaiters } from './waiters.ts';
import { ConsumerService, DEFAULT_POP_TOLERANCE_MS } from './consumers.ts';
import { PopGate } from './pop.ts';
import type { Notifier } from '../db/notify.ts';

export interface ZkParts {
  /** The unsalted commitment of bn128-poseidon8-v1 (still published for v1 bundles). */
  readonly tariffCommitment: (t: TariffSnapshot) => Promise<bigint>;
  /** The salted commitment of bn128-poseidon8-v2. */
  readonly tariffCommitmentV2: (t: TariffSnapshot, salt: bigint) => Promise<bigint>;
  /** Verification keys by binding version, as served in /v1/trust. */
  readonly verificationKeys?: Readonly<Record<string, Record<string, unknown>>>;
}

export interface ContainerOptions {
  readonly database: Database;
  readonly dataDir: string;
  readonly adminToken: string;
  readonly zk: ZkParts;
  readonly signingKey?: SigningKey;
  readonly keyRotationGraceMs?: number;
  /** Lifetime of the signed revocation list (default DEFAULT_REVOCATION_LIST_LIFETIME_MS). */
  readonly revocationListLifetimeMs?: number;
  readonly clock?: () => Date;
  /** Bilateral metering: the bound on |now − timestamp| of a consumer PoP (default 300 s). */
  readonly popToleranceMs?: number;
  /** Metrics registry (default: a new one, with the process metrics). */
  readonly metrics?: Metrics;
  readonly log?: (c: { keys: KeyRing; notifier: Notifier; metrics: Metrics }) => LogApi & { trust(): Promise<TrustMaterial['log']> };
  /** Worker threads of POST /v1/verify/batch (default: the available cores; 0: the calling thread).
   *  They start on the first batch. */
  readonly verifyThreads?: number;
  /** The sampling secret (METERPROOF_SAMPLING_SECRET); default: DATA_DIR/keys/sampling.key. */
  readonly samplingSecret?: string;
  /** PROOF_QUEUE_LIMIT (default DEFAULT_PROOF_QUEUE_LIMIT). */
  readonly proofQueueLimit?: number;
  /** How long a tenant's proof policy and the queue depth are cached (tests shorten them). */
  readonly policyCacheMs?: number;
  readonly queueCheckMs?: number;
  /** Where attest reports events it could not store (default: standard error). */
  readonly onStoreFailure?: (message: string, e: unknown) => void;
}

/** What the HTTP app (src/http/app.ts, AppDeps) is built from. */
export interface ServiceDeps {
  readonly db: Db;
  readonly storeKind: 'pglite' | 'postgres';
  readonly auth: Auth;
  readonly attest: AttestService;
  readonly tariffs: TariffService;
  readonly plans: PlanService;
  readonly settlements: SettlementService;
  readonly keys: KeyRing;
  readonly proofs: ProofQueue;
  readonly policies: ProofPolicyService;
  readonly admin: AdminService;
  readonly revocations: RevocationService;
  readonly consumers: ConsumerService;
  readonly webhooks: WebhookService;
  readonly trust: () => Promise<TrustMaterial>;
  readonly verify: (bundle: unknown, trust: TrustMaterial, profile: 'strict' | 'standard', consistencyProof?: string[]) => Promise<VerificationReport>;
  /** verify() of many bundles, in order: every check per bundle, the Groth16 pairing checks batched. */
  readonly verifyMany: (items: readonly BatchItem[], trust: TrustMaterial, profile: 'strict' | 'standard') => Promise<VerificationReport[]>;
  readonly log?: LogApi;
  readonly metrics: Metrics;
  readonly waiters: SyncWaiters;
  readonly version?: string;
  /** The service clock (tests fix it); default: the system clock. */
  readonly clock?: () => Date;
}

export interface Container {
  readonly deps: ServiceDeps;
  readonly keys: KeyRing;
  readonly proofs: ProofQueue;
  readonly policies: ProofPolicyService;
  readonly attest: AttestService;
  readonly tariffs: TariffService;
  readonly revocations: RevocationService;
  readonly metrics: Metrics;
  readonly waiters: SyncWaiters;
  /** The bulk verifier's worker threads (close them at shutdown). */
  readonly verifier: VerifyPool;
}

export async function buildContainer(o: ContainerOptions): Promise<Container> {
  const db = o.database.db;
  const keys = new KeyRing(db, path.join(o.dataDir, 'keys'), o.signingKey, o.keyRotationGraceMs);
  await keys.init();
  const metrics = o.metrics ?? new Metrics();
  const notifier = o.database.notifier;
  const tariffs = new TariffService(db, { v1: o.zk.tariffCommitment, v2: o.zk.tariffCommitmentV2 });
  const popToleranceMs = o.popToleranceMs ?? DEFAULT_POP_TOLERANCE_MS;
  const consumers = new ConsumerService(db, o.clock, popToleranceMs);
  const plans = new PlanService(db, tariffs);
  const pop = new PopGate(db, { toleranceMs: popToleranceMs, plans, ...(o.clock ? { clock: o.clock } : {}) });
  const proofs = new ProofQueue(db, notifier);
  const policies = new ProofPolicyService(db, proofs, {
    secret: loadOrCreateSamplingSecret(path.join(o.dataDir, 'keys'), o.samplingSecret),
    metrics,
    ...(o.proofQueueLimit !== undefined ? { queueLimit: o.proofQueueLimit } : {}),
    ...(o.policyCacheMs !== undefined ? { policyCacheMs: o.policyCacheMs } : {}),
    ...(o.queueCheckMs !== undefined ? { queueCheckMs: o.queueCheckMs } : {}),
  });
  const auth = new Auth(db, hashSecret(o.adminToken));
  const attest = new AttestService(db, keys, tariffs, o.clock, metrics, policies, plans, pop, auth);
  if (o.onStoreFailure) attest.onStoreFailure = o.onStoreFailure;
  const revocations = new RevocationService(db, keys, o.clock, o.revocationListLifetimeMs);
  const waiters = new SyncWaiters(db, notifier, (n) => metrics.syncWaiters.set(n));
  const log = o.log?.({ keys, notifier, metrics });
  const trust = async (): Promise<TrustMaterial> => {
    const published = await tariffs.list();
    const logTrust = await log?.trust();
    return {
      jwks: await keys.jwks(),
      // v1's key under its old name too, for verifiers that read only that field
      ...(o.zk.verificationKeys?.[BINDING_VERSION] ? { verification_key: o.zk.verificationKeys[BINDING_VERSION] } : {}),
      ...(o.zk.verificationKeys ? { verification_keys: { ...o.zk.verificationKeys } } : {}),
      ...(logTrust ? { log: logTrust } : {}),
      revocations: await revocations.signedList(),
      // each version's salted v2 commitment, and the unsalted v1 one of versions published before
      // v2 (for their v1 bundles; for any other it would only confirm guessed prices)
      tariffs: published.flatMap((t) => [
        ...(t.v1Public ? [{ tariff_id: t.snapshot.tariff_id, tariff_version: t.snapshot.tariff_version, tariff_commitment: t.tariffCommitment }] : []),
        { tariff_id: t.snapshot.tariff_id, tariff_version: t.snapshot.tariff_version, binding: BINDING_VERSION_V2, tariff_commitment: t.tariffCommitmentV2 },
      ]),
      ...(await consumers.trust(await plans.popRequirements())),
    };
  };
  const verifier = createVerifyPool({ threads: o.verifyThreads });
  const now = () => (o.clock ? { now: o.clock() } : {});
  const deps: ServiceDeps = {
    db,
    storeKind: o.database.kind,
    auth,
    attest,
    tariffs,
    plans,
    settlements: new SettlementService(db, keys, plans, tariffs, o.clock),
    keys,
    proofs,
    policies,
    admin: new AdminService(db, (id) => auth.forget(id)),
    revocations,
    consumers,
    webhooks: new WebhookService(db),
    trust,
    verify: (bundle, t, profile, consistencyProof) => verify(bundle, t, { profile, consistencyProof, ...now() }),
    verifyMany: (items, t, profile) => verifier.verifyMany(items, t, { profile, ...now() }),
    ...(log ? { log } : {}),
    metrics,
    waiters,
    version: readVersion(),
    ...(o.clock ? { clock: o.clock } : {}),
  };
  return { deps, keys, proofs, policies, attest, tariffs, revocations, metrics, waiters, verifier };
}

function readVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}
