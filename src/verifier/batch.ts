// Many bundles verified on this thread with one batched Groth16 pairing check. Each bundle goes
// through the one algorithm (src/core/verify.ts) with every check of its own, its proof's points
// and signals included; only the last step of the proof check, the pairing equation, is collected.
// When every bundle has either reached that step or finished, the collected equations are checked
// together (pairing.ts: random linear combination, one final exponentiation). If the combination
// fails, each equation is checked alone, so exactly the bundles whose proofs fail get
// PROOF_INVALID and the reports are those that verifying one at a time gives.
import { verifyBundle, verifyBundleText, type VerifyOptions } from '../core/verify.ts';
import type { VerificationReport } from '../core/schemas.ts';
import type { PairingFn } from './groth16.ts';
import { pairingCheck, type PairingItem } from './pairing.ts';
import { createZkVerifier } from './zk.ts';
import { logVerifier } from './log.ts';

/** A bundle as received: JSON text (parsed strictly, as verifyJson does) or a parsed value. */
export type BatchItem = { readonly text: string } | { readonly bundle: unknown };

interface Waiting {
  readonly item: PairingItem;
  resolve(ok: boolean): void;
  reject(e: unknown): void;
}

/** Collects the pairing equations of `n` concurrent verifications and checks them together. */
class PairingBatch {
  private readonly waiting = new Map<number, Waiting>();
  private finished = 0;
  constructor(private readonly n: number) {}

  /** The pairing step of verification `i`: resolved when its batch has been checked. */
  pairingFor(i: number): PairingFn {
    return (item) =>
      new Promise<boolean>((resolve, reject) => {
        this.waiting.set(i, { item, resolve, reject });
        this.maybeCheck();
      });
  }

  /** Verification `i` has finished (with or without a pairing step). */
  finish(): void {
    this.finished++;
    this.maybeCheck();
  }

  private maybeCheck(): void {
    if (this.waiting.size === 0 || this.waiting.size + this.finished < this.n) return;
    const batch = [...this.waiting.values()];
    this.waiting.clear();
    void check(batch);
  }
}

async function check(batch: Waiting[]): Promise<void> {
  try {
    if (await pairingCheck(batch.map((w) => w.item))) {
      for (const w of batch) w.resolve(true);
      return;
    }
  } catch {
    // fall through: each alone, so an equation that cannot be computed fails only its own bundle
  }
  if (batch.length === 1) return batch[0]!.resolve(false);
  for (const w of batch) await pairingCheck([w.item]).then(w.resolve, w.reject);
}

export type BatchOptions = Omit<VerifyOptions, 'zk' | 'log'>;

/**
 * Verify `items` against one trust material, with every check this build supports (the same as
 * `verify` / `verifyJson` one at a time), in order. Never throws for a bad bundle: each report
 * says what failed.
 */
export function verifyBatch(items: readonly BatchItem[], trust: unknown, opts: BatchOptions = {}): Promise<VerificationReport[]> {
  const batch = new PairingBatch(items.length);
  return Promise.all(
    items.map(async (item, i) => {
      const o: VerifyOptions = { ...opts, zk: createZkVerifier(batch.pairingFor(i)), log: logVerifier };
      try {
        return await ('text' in item ? verifyBundleText(item.text, trust, o) : verifyBundle(item.bundle, trust, o));
      } finally {
        batch.finish();
      }
    }),
  );
}
