// Proof policies: when an attestation gets its Groth16 proof. Pure: the policy's schema, and the
// sampling rule (an HMAC of the statement digest under a secret, compared with the rate), so that
// which events are proved at attest time cannot be predicted (nor steered) by the sender, yet is
// reproducible by whoever holds the secret.
import { createHmac } from 'node:crypto';
import { z } from 'zod';

export const PROOF_POLICIES = ['eager', 'on_demand', 'sampled'] as const;
export type ProofPolicyKind = (typeof PROOF_POLICIES)[number];

export type ProofPolicy = { readonly policy: 'eager' } | { readonly policy: 'on_demand' } | { readonly policy: 'sampled'; readonly rate: number };

/** The body of PUT /v1/admin/tenants/{id}/proof-policy (and, later, of a plan's policy). */
export const ProofPolicyInput = z.discriminatedUnion('policy', [
  z.strictObject({ policy: z.literal('eager') }),
  z.strictObject({ policy: z.literal('on_demand') }),
  z.strictObject({
    policy: z.literal('sampled'),
    rate: z
      .number({ message: 'rate must be a number' })
      .finite()
      .gt(0, 'rate must be greater than 0 (for no proofs at attest time use on_demand)')
      .lte(1, 'rate must be at most 1'),
  }),
]);

export const EAGER: ProofPolicy = { policy: 'eager' };

/**
 * The policy that applies to an event: the most specific one given. Today only tenants carry a
 * policy; a plan's policy (when plans exist) is passed as `plan` and takes precedence.
 */
export function effectivePolicy(tenant: ProofPolicy | undefined, plan?: ProofPolicy): ProofPolicy {
  return plan ?? tenant ?? EAGER;
}

/** 2^53: sampling compares the top 53 bits of the HMAC (an exact integer in a double). */
const TWO_53 = 2 ** 53;

/**
 * Whether an event is proved at attest time under `sampled` at `rate`: the first 53 bits of
 * HMAC-SHA256(secret, statement digest as ASCII), read as an integer u, satisfy u < ⌊rate·2^53⌋.
 * Rate 0 selects nothing, rate 1 everything; in between, each event independently with
 * probability `rate`. The sender can neither predict nor steer it: the statement digest covers
 * the service's random event salt (in the salted event digest), the issue time and the chain's
 * previous digest, and the HMAC needs the secret.
 */
export function isSampled(secret: Uint8Array, statementDigest: string, rate: number): boolean {
  if (!(rate > 0)) return false;
  if (rate >= 1) return true;
  const mac = createHmac('sha256', secret).update(statementDigest, 'ascii').digest();
  const u = mac.readUIntBE(0, 6) * 32 + (mac[6]! >>> 3); // 48 + 5 = 53 bits
  return u < Math.floor(rate * TWO_53);
}

/** The proof status an attestation is stored with: `pending` (a proof job is queued with it),
 *  `on_demand` (no job: proved when asked), or `deferred` (eager, but the queue was full). */
export type InitialProofStatus = 'pending' | 'on_demand' | 'deferred';

/** The stored status for a new attestation under `policy`; `queueFull` when the proof queue is over
 *  its limit (only jobs that would be queued are deferred: on_demand ones need no job). */
export function initialProofStatus(policy: ProofPolicy, statementDigest: string, secret: Uint8Array, queueFull: boolean): InitialProofStatus {
  const wantsJob = policy.policy === 'eager' || (policy.policy === 'sampled' && isSampled(secret, statementDigest, policy.rate));
  if (!wantsJob) return 'on_demand';
  return queueFull ? 'deferred' : 'pending';
}
