// Minimal reader of the iden3 .r1cs binary format (header and constraints sections), for tests
// that evaluate crafted witnesses against the compiled constraint system.
import { BN128_P } from '../../src/core/field.ts';

export type Lc = [number, bigint][];
export interface R1cs {
  nWires: number;
  constraints: [Lc, Lc, Lc][];
}

export function readR1cs(buf: Buffer): R1cs {
  if (buf.toString('ascii', 0, 4) !== 'r1cs') throw new Error('not an r1cs file');
  const nSections = buf.readUInt32LE(8);
  let pos = 12;
  let n8 = 32;
  let nWires = 0;
  let nConstraints = 0;
  let constraintsAt = -1;
  const field = (at: number) => BigInt(`0x${Buffer.from(buf.subarray(at, at + n8)).reverse().toString('hex')}`);
  for (let s = 0; s < nSections; s++) {
    const type = buf.readUInt32LE(pos);
    const size = Number(buf.readBigUInt64LE(pos + 4));
    const body = pos + 12;
    if (type === 1) {
      n8 = buf.readUInt32LE(body);
      if (field(body + 4) !== BN128_P) throw new Error('r1cs is not over bn128');
      nWires = buf.readUInt32LE(body + 4 + n8);
      nConstraints = buf.readUInt32LE(body + 4 + n8 + 24);
    }
    if (type === 2) constraintsAt = body;
    pos = body + size;
  }
  if (constraintsAt < 0) throw new Error('r1cs without constraints section');
  pos = constraintsAt;
  const lc = (): Lc => {
    const n = buf.readUInt32LE(pos);
    pos += 4;
    const terms: Lc = [];
    for (let i = 0; i < n; i++) {
      terms.push([buf.readUInt32LE(pos), field(pos + 4)]);
      pos += 4 + n8;
    }
    return terms;
  };
  const constraints: [Lc, Lc, Lc][] = [];
  for (let i = 0; i < nConstraints; i++) constraints.push([lc(), lc(), lc()]);
  return { nWires, constraints };
}
