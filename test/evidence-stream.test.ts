// The streamed reader of settlement evidence (src/cli/evidence-stream.ts): members parsed one by
// one, attestations handed over one at a time, whatever the chunking; malformed text refused.
import { describe, expect, it } from 'vitest';
import { readEvidence } from '../src/cli/evidence-stream.ts';
import { JsonTextError } from '../src/core/json.ts';

async function read(text: string, chunk = 7) {
  const parts: string[] = [];
  for (let i = 0; i < text.length; i += chunk) parts.push(text.slice(i, i + chunk));
  const got: { head: Record<string, unknown> | null; items: unknown[]; headBeforeItems: boolean } = { head: null, items: [], headBeforeItems: true };
  await readEvidence(
    (async function* () {
      yield* parts;
    })(),
    {
      head: (h) => void (got.head = { ...h }),
      statement: (t) => {
        if (!got.head) got.headBeforeItems = false;
        got.items.push(JSON.parse(t));
      },
    },
  );
  return got;
}

const head = { type: 'meterproof/settlement-evidence/v1', settlement: { statement: { a: [1, { b: '},]"\\' }] } }, receipt: null, plan: { p: 1 }, adjustments: [] };

describe('readEvidence', () => {
  it('gives the head, then each statement, for any chunk size (strings with brackets and escapes included)', async () => {
    const items = [{ statement: { s: '[{"x"}]' }, key_id: 'k', signature: 's' }, { statement: { s: '\\"' }, key_id: 'k2', signature: 't' }];
    const text = JSON.stringify({ ...head, attestations: items });
    for (const chunk of [1, 3, 64, 1 << 20]) {
      const got = await read(text, chunk);
      expect(got.head).toEqual(head);
      expect(got.items).toEqual(items);
      expect(got.headBeforeItems).toBe(true);
    }
    expect((await read(JSON.stringify({ ...head, attestations: [] }))).items).toEqual([]);
  });

  it('members after the attestations: the statements are held until the head is complete', async () => {
    const text = JSON.stringify({ type: head.type, attestations: [{ n: 1 }, { n: 2 }], settlement: head.settlement, receipt: null, plan: head.plan, adjustments: [] });
    const got = await read(text, 5);
    expect(got.head).toEqual(head);
    expect(got.items).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('refuses duplicate members, a second attestations array, a member after a complete head, trailing text, truncation and non-objects', async () => {
    const bad = [
      '{"type":1,"type":2,"attestations":[]}',
      '{"attestations":[],"attestations":[]}',
      `${JSON.stringify({ ...head, attestations: [] })} x`,
      JSON.stringify({ ...head, attestations: [{ a: 1 }] }).slice(0, -3),
      '[1,2]',
      JSON.stringify(head),
      '{"attestations":5}',
      '{"a":1,,"attestations":[]}',
      // a member the head (given to the verifier when the array began) would not hold
      `${JSON.stringify({ ...head, attestations: [] }).slice(0, -1)},"extra":1}`,
    ];
    for (const text of bad) await expect(read(text, 4), text).rejects.toBeInstanceOf(JsonTextError);
  });
});
