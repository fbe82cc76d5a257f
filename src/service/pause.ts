// A sleep that can be cut short: the background loops (proof worker, webhook deliverer) wait with
// it between rounds, and are woken by new work or by stop().

export interface Pauser {
  /** Resolves after `ms`, or at once when woken meanwhile. */
  pause(ms: number): Promise<void>;
  /** Ends the current pause, if any. */
  wake(): void;
}

export function pauser(): Pauser {
  let wake: (() => void) | null = null;
  return {
    pause: (ms) =>
      new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        wake = () => {
          clearTimeout(t);
          r();
        };
      }).finally(() => (wake = null)),
    wake: () => wake?.(),
  };
}
