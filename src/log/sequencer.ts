// The sequencer loop: runs integration rounds, paced, poked by the attest path, backing off on
// errors.
import type { Metrics } from '../service/metrics.ts';
import { DEFAULT_BATCH } from './integrate.ts';

/** Default shortest time between two integration rounds (SequencerOptions.minRoundMs). */
export const DEFAULT_MIN_ROUND_MS = 100;

export interface SequencerOptions {
  /** Idle poll interval when nothing pokes the loop (default 20 ms). */
  readonly intervalMs?: number;
  /** Leaves per checkpoint (default 1000). */
  readonly maxBatch?: number;
  /** Shortest time between the starts of two integration rounds, however often the loop is poked
   *  (default 100 ms): under load every round, with its transaction and its signed checkpoint,
   *  carries the leaves of many attestations. A full batch (a backlog) is followed at once. */
  readonly minRoundMs?: number;
  /** Called with every integration error; the loop backs off and retries (default: console.error). */
  readonly onError?: (e: unknown) => void;
}

export interface Sequencer {
  /** Run an integration step now instead of at the next tick (the attest path calls it). */
  poke(): void;
  /** Stop the loop; resolves when the step in progress (if any) has finished. */
  stop(): Promise<void>;
  /** True until stop() is called (the loop itself never ends on an error: it retries). */
  running(): boolean;
}

/** Starts the loop over `integrate` (one round of at most `maxBatch` leaves; see Integrator). */
export function startSequencer(integrate: (maxBatch: number) => Promise<number>, so: SequencerOptions = {}, metrics?: Metrics): Sequencer {
  const intervalMs = so.intervalMs ?? 20;
  const minRoundMs = so.minRoundMs ?? DEFAULT_MIN_ROUND_MS;
  const batch = so.maxBatch ?? DEFAULT_BATCH;
  const onError = so.onError ?? ((e: unknown) => console.error('log sequencer:', e));
  let stopped = false;
  let poked = false;
  /** Ends the current wait early (stop always; a poke only while the loop is idle). */
  let wake: (() => void) | null = null;
  let idle = false;
  let failures = 0;

  const sleep = (ms: number, pokeable: boolean) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = null;
        idle = false;
        resolve();
      }
      wake = done;
      idle = pokeable;
    });

  const loop = (async () => {
    while (!stopped) {
      poked = false;
      const started = performance.now(); // monotonic: a wall-clock step cannot stall the loop
      let n = 0;
      try {
        n = await integrate(batch);
        failures = 0;
      } catch (e) {
        failures++;
        metrics?.logRoundErrors.inc();
        onError(e);
      }
      if (stopped) break;
      if (failures) {
        await sleep(Math.min(5000, intervalMs * 2 ** failures), false);
        continue;
      }
      if (n === batch && batch > 0) continue; // a backlog: more is queued
      // pace the rounds: the next one starts minRoundMs after this one started at the earliest;
      // with nothing poked the loop then idles until a poke or the poll interval (counted from
      // the round's end when it found nothing, so a slow store is never polled back to back)
      const gap = started + minRoundMs - performance.now();
      if (gap > 0) await sleep(gap, false);
      const rest = n === 0 ? intervalMs : started + intervalMs - performance.now();
      if (!poked && !stopped && rest > 0) await sleep(rest, true);
    }
  })();

  return {
    poke() {
      poked = true;
      if (idle) wake?.();
    },
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
    running: () => !stopped,
  };
}
