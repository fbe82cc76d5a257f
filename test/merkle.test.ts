import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromB64, toHex, utf8 } from '../src/core/bytes.ts';
import {
  CompactRange,
  MerkleError,
  appendLeaves,
  buildProof,
  consistencyProof,
  consistencyProofPlan,
  emptyRoot,
  inclusionProof,
  inclusionProofPlan,
  leafHash,
  nodeHash,
  nodeKey,
  planNodes,
  rangeNodes,
  rootFromConsistencyProof,
  rootFromInclusionProof,
  rootFromLeafHashes,
  rootFromNodes,
  rootNodes,
  verifyConsistency,
  verifyInclusion,
  type MerkleErrorCode,
  type NodeId,
  type StoredNode,
} from '../src/core/merkle.ts';

const VECTORS = path.resolve(process.cwd(), '../shared/vectors/merkle-transparency-dev');
const U64_MAX = (1n << 64n) - 1n;

/** The error code a call throws, or 'OK'. Anything but a MerkleError is rethrown. */
function codeOf(fn: () => unknown): MerkleErrorCode | 'OK' {
  try {
    fn();
    return 'OK';
  } catch (e) {
    if (e instanceof MerkleError) return e.code;
    throw e;
  }
}

const hex = (hs: readonly Uint8Array[]): string[] => hs.map(toHex);
const flipBit = (h: Uint8Array, bit: number): Uint8Array => {
  const c = new Uint8Array(h);
  c[bit >> 3]! ^= 1 << (bit & 7);
  return c;
};

// ---------------------------------------------------------------------------------------------
// Reference definitions straight from RFC 9162 §2.1.3.1 and §2.1.4.1, over an array of leaf hashes.

function largestPow2Below(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function refPath(m: number, d: readonly Uint8Array[]): Uint8Array[] {
  if (d.length <= 1) return [];
  const k = largestPow2Below(d.length);
  return m < k
    ? [...refPath(m, d.slice(0, k)), rootFromLeafHashes(d.slice(k))]
    : [...refPath(m - k, d.slice(k)), rootFromLeafHashes(d.slice(0, k))];
}

function refSubproof(m: number, d: readonly Uint8Array[], b: boolean): Uint8Array[] {
  if (m === d.length) return b ? [] : [rootFromLeafHashes(d)];
  const k = largestPow2Below(d.length);
  return m <= k
    ? [...refSubproof(m, d.slice(0, k), b), rootFromLeafHashes(d.slice(k))]
    : [...refSubproof(m - k, d.slice(k), false), rootFromLeafHashes(d.slice(0, k))];
}

/** Lengths of the same definitions, for sizes without leaves. */
function refPathLen(m: bigint, n: bigint): number {
  if (n <= 1n) return 0;
  let k = 1n;
  while (k * 2n < n) k *= 2n;
  return 1 + (m < k ? refPathLen(m, k) : refPathLen(m - k, n - k));
}

function refProofLen(m: bigint, n: bigint, b = true): number {
  if (m === n) return b ? 0 : 1;
  let k = 1n;
  while (k * 2n < n) k *= 2n;
  return 1 + (m <= k ? refProofLen(m, k, b) : refProofLen(m - k, n - k, false));
}

/** What a verifier must say about a proof of `len` hashes for (index, size) of another proof. */
function wantInclusionCode(index: bigint, size: bigint, len: number): MerkleErrorCode {
  if (size > U64_MAX) return 'SIZE_OUT_OF_RANGE';
  if (index < 0n || index >= size) return 'INDEX_OUT_OF_RANGE';
  return refPathLen(index, size) === len ? 'ROOT_MISMATCH' : 'PROOF_SIZE';
}

function wantConsistencyCode(m: bigint, n: bigint, len: number): MerkleErrorCode {
  if (m <= 0n || m > n) return 'SIZE_OUT_OF_RANGE';
  return refProofLen(m, n) === len ? 'ROOT_MISMATCH' : 'PROOF_SIZE';
}

// ---------------------------------------------------------------------------------------------
// A small log: leaves, stored nodes, roots.

const N = 40;
const leaves = Array.from({ length: 2 * N + 1 }, (_, i) => leafHash(utf8(`leaf ${i}`)));
const store = new Map<string, Uint8Array>();
for (const n of CompactRange.empty().appendAll(leaves)) store.set(nodeKey(n), n.hash);
const getNode = (id: NodeId): Uint8Array | undefined => store.get(nodeKey(id));
const roots = Array.from({ length: leaves.length + 1 }, (_, n) => rootFromLeafHashes(leaves.slice(0, n)));
const sizes = Array.from({ length: N }, (_, i) => i + 1);

describe('hashing (RFC 9162 §2.1.1)', () => {
  it('uses the 0x00 / 0x01 prefixes and SHA-256 of the empty string', () => {
    expect(toHex(emptyRoot())).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    // Known answers from the transparency-dev test data: leaf hash of the empty leaf, and roots.
    expect(toHex(leafHash(new Uint8Array(0)))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    const tdLeaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(
      (h) => leafHash(new Uint8Array(Buffer.from(h, 'hex'))),
    );
    expect(toHex(rootFromLeafHashes(tdLeaves.slice(0, 3)))).toBe(
      'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    );
    expect(toHex(rootFromLeafHashes(tdLeaves))).toBe('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
    expect(toHex(nodeHash(tdLeaves[0]!, tdLeaves[1]!))).not.toBe(toHex(nodeHash(tdLeaves[1]!, tdLeaves[0]!)));
  });

  it('decomposes ranges into perfect subtrees whose right fold is the root', () => {
    expect(rootNodes(13n)).toEqual([
      { level: 3, index: 0n },
      { level: 2, index: 2n },
      { level: 0, index: 12n },
    ]);
    expect(rootNodes(0n)).toEqual([]);
    expect(rangeNodes(5n, 11n)).toEqual([
      { level: 0, index: 5n },
      { level: 1, index: 3n },
      { level: 1, index: 4n },
      { level: 0, index: 10n },
    ]);
    for (let n = 0; n <= leaves.length; n++) {
      const hashes = rootNodes(BigInt(n)).map((id) => getNode(id)!);
      expect(toHex(rootFromNodes(hashes))).toBe(toHex(roots[n]!));
    }
  });
});

describe('inclusion proofs from stored nodes', () => {
  it.each(sizes)('size %i: every index equals RFC 9162 PATH and verifies', (n) => {
    const size = BigInt(n);
    for (let i = 0; i < n; i++) {
      const index = BigInt(i);
      const plan = inclusionProofPlan(index, size);
      const reads = planNodes(plan);
      // O(log n) reads, all of perfect subtrees inside the tree.
      expect(reads.length).toBeLessThanOrEqual(2 * n.toString(2).length);
      for (const id of reads) expect((id.index + 1n) << BigInt(id.level)).toBeLessThanOrEqual(size);
      const proof = inclusionProof(index, size, getNode);
      expect(hex(proof)).toEqual(hex(refPath(i, leaves.slice(0, n))));
      expect(toHex(rootFromInclusionProof(index, size, leaves[i]!, proof))).toBe(toHex(roots[n]!));
      expect(codeOf(() => verifyInclusion(index, size, leaves[i]!, roots[n]!, proof))).toBe('OK');
    }
  });

  it.each(sizes)('size %i: broken variants fail with the right code', (n) => {
    const size = BigInt(n);
    const root = roots[n]!;
    for (let i = 0; i < n; i++) {
      const index = BigInt(i);
      const leaf = leaves[i]!;
      const proof = inclusionProof(index, size, getNode);
      const check = (idx: bigint, sz: bigint, p: readonly Uint8Array[], l = leaf, r = root): MerkleErrorCode | 'OK' =>
        codeOf(() => verifyInclusion(idx, sz, l, r, p));
      proof.forEach((h, k) => {
        expect(check(index, size, proof.with(k, flipBit(h, 3)))).toBe('ROOT_MISMATCH');
        expect(check(index, size, proof.toSpliced(k, 1))).toBe('PROOF_SIZE');
      });
      expect(check(index, size, [...proof, root])).toBe('PROOF_SIZE');
      expect(check(index, size, [root, ...proof])).toBe('PROOF_SIZE');
      expect(check(index, size, [...proof, new Uint8Array(0)])).toBe('PROOF_SIZE');
      for (const idx of [index - 1n, index + 1n, index ^ 2n]) {
        expect(check(idx, size, proof)).toBe(wantInclusionCode(idx, size, proof.length));
      }
      expect(check(index, size * 2n, proof)).toBe(wantInclusionCode(index, size * 2n, proof.length));
      expect(check(index, size / 2n, proof)).toBe(wantInclusionCode(index, size / 2n, proof.length));
      expect(check(index, size, proof, leaves[i + 1]!)).toBe('ROOT_MISMATCH');
      expect(check(index, size, proof, leaf, roots[n + 1]!)).toBe('ROOT_MISMATCH');
      expect(check(index, size, proof, leaf.subarray(1))).toBe('HASH_SIZE');
      if (proof.length > 0) expect(check(index, size, proof.with(0, new Uint8Array(33)))).toBe('HASH_SIZE');
    }
  });

  it('a mismatch carries both roots', () => {
    const proof = inclusionProof(3n, 7n, getNode);
    let err: unknown;
    try {
      verifyInclusion(3n, 7n, leaves[3]!, roots[8]!, proof);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MerkleError);
    const m = err as MerkleError;
    expect(m.code).toBe('ROOT_MISMATCH');
    expect(toHex(m.expectedRoot!)).toBe(toHex(roots[8]!));
    expect(toHex(m.computedRoot!)).toBe(toHex(roots[7]!));
  });

  it('rejects indexes and sizes outside uint64 and index ≥ size', () => {
    const leaf = leaves[0]!;
    expect(codeOf(() => rootFromInclusionProof(0n, 0n, leaf, []))).toBe('INDEX_OUT_OF_RANGE');
    expect(codeOf(() => rootFromInclusionProof(5n, 5n, leaf, []))).toBe('INDEX_OUT_OF_RANGE');
    expect(codeOf(() => rootFromInclusionProof(-1n, 5n, leaf, []))).toBe('INDEX_OUT_OF_RANGE');
    expect(codeOf(() => rootFromInclusionProof(U64_MAX, U64_MAX, leaf, []))).toBe('INDEX_OUT_OF_RANGE');
    expect(codeOf(() => rootFromInclusionProof(0n, U64_MAX + 1n, leaf, []))).toBe('SIZE_OUT_OF_RANGE');
    expect(codeOf(() => rootFromInclusionProof(0n, -3n, leaf, []))).toBe('SIZE_OUT_OF_RANGE');
    expect(codeOf(() => inclusionProofPlan(3n, 3n))).toBe('INDEX_OUT_OF_RANGE');
    expect(codeOf(() => rootFromInclusionProof(0n, 1n, leaf, []))).toBe('OK');
  });

  it('reports a node the store does not have', () => {
    const partial = (id: NodeId): Uint8Array | undefined => (id.level === 0 ? undefined : getNode(id));
    expect(codeOf(() => inclusionProof(4n, 9n, partial))).toBe('NODE_MISSING');
    expect(codeOf(() => buildProof([[{ level: 0, index: 1n }]], () => new Uint8Array(31)))).toBe('NODE_MISSING');
  });
});

describe('consistency proofs from stored nodes', () => {
  it.each(sizes)('size2 %i: every size1 equals RFC 9162 PROOF and verifies', (n) => {
    for (let m = 1; m <= n; m++) {
      const proof = consistencyProof(BigInt(m), BigInt(n), getNode);
      expect(hex(proof)).toEqual(hex(refSubproof(m, leaves.slice(0, n), true)));
      const reads = planNodes(consistencyProofPlan(BigInt(m), BigInt(n)));
      expect(reads.length).toBeLessThanOrEqual(2 * n.toString(2).length);
      expect(toHex(rootFromConsistencyProof(BigInt(m), BigInt(n), roots[m]!, proof))).toBe(toHex(roots[n]!));
      expect(codeOf(() => verifyConsistency(BigInt(m), BigInt(n), roots[m]!, roots[n]!, proof))).toBe('OK');
    }
  });

  it.each(sizes)('size2 %i: broken variants fail with the right code', (n) => {
    const size2 = BigInt(n);
    for (let m = 1; m <= n; m++) {
      const size1 = BigInt(m);
      const [r1, r2] = [roots[m]!, roots[n]!];
      const proof = consistencyProof(size1, size2, getNode);
      const check = (s1: bigint, s2: bigint, p: readonly Uint8Array[], a = r1, b = r2): MerkleErrorCode | 'OK' =>
        codeOf(() => verifyConsistency(s1, s2, a, b, p));
      proof.forEach((h, k) => {
        expect(check(size1, size2, proof.with(k, flipBit(h, 4)))).toBe('ROOT_MISMATCH');
        expect(check(size1, size2, proof.toSpliced(k, 1))).toBe('PROOF_SIZE');
      });
      expect(check(size1, size2, [...proof, r1])).toBe('PROOF_SIZE');
      expect(check(size1, size2, [r2, ...proof])).toBe('PROOF_SIZE');
      for (const s1 of [size1 - 1n, size1 + 1n, size1 ^ 2n]) {
        expect(check(s1, size2, proof)).toBe(wantConsistencyCode(s1, size2, proof.length));
      }
      expect(check(size1, size2 * 2n, proof)).toBe(wantConsistencyCode(size1, size2 * 2n, proof.length));
      expect(check(size1, size2 / 2n, proof)).toBe(wantConsistencyCode(size1, size2 / 2n, proof.length));
      if (m < n) {
        expect(check(size1, size2, proof, r2, r1)).toBe('ROOT_MISMATCH'); // swapped roots
        expect(check(size1, size2, proof, roots[m - 1]!)).toBe('ROOT_MISMATCH');
        expect(check(size1, size2, proof, r1, roots[n + 1]!)).toBe('ROOT_MISMATCH');
        expect(check(size1, size2, proof, r1.subarray(2))).toBe('HASH_SIZE');
        expect(check(size1, size2, [])).toBe('PROOF_SIZE');
      } else {
        expect(check(size1, size2, proof, r1, roots[n + 1]!)).toBe('ROOT_MISMATCH');
      }
    }
  });

  it('refuses size1 > size2, size1 = 0 and sizes outside uint64', () => {
    const r = roots[1]!;
    expect(codeOf(() => verifyConsistency(2n, 1n, r, r, []))).toBe('SIZE_OUT_OF_RANGE');
    expect(codeOf(() => verifyConsistency(0n, 0n, emptyRoot(), emptyRoot(), []))).toBe('SIZE_OUT_OF_RANGE');
    expect(codeOf(() => verifyConsistency(0n, 3n, emptyRoot(), roots[3]!, []))).toBe('SIZE_OUT_OF_RANGE');
    expect(codeOf(() => verifyConsistency(1n, U64_MAX + 1n, r, r, [r]))).toBe('SIZE_OUT_OF_RANGE');
    expect(codeOf(() => consistencyProofPlan(0n, 5n))).toBe('SIZE_OUT_OF_RANGE');
    expect(codeOf(() => consistencyProofPlan(6n, 5n))).toBe('SIZE_OUT_OF_RANGE');
    expect(consistencyProofPlan(5n, 5n)).toEqual([]);
  });
});

describe('sizes beyond 2^53', () => {
  // A virtual tree whose leaves are all equal: the perfect subtree at level k has hash h[k].
  const h: Uint8Array[] = [leafHash(utf8('same'))];
  for (let k = 1; k <= 64; k++) h.push(nodeHash(h[k - 1]!, h[k - 1]!));
  const virtualNode = (id: NodeId): Uint8Array => h[id.level]!;
  const rootOf = (size: bigint): Uint8Array => rootFromNodes(rootNodes(size).map(virtualNode));

  it.each([
    [0n, 2n ** 60n + 12345n],
    [2n ** 59n + 7n, 2n ** 60n + 12345n],
    [2n ** 60n + 12344n, 2n ** 60n + 12345n],
    [U64_MAX - 1n, U64_MAX],
    [2n ** 53n + 1n, 2n ** 53n + 2n],
  ])('inclusion of %s in %s', (index, size) => {
    const proof = inclusionProof(index, size, virtualNode);
    expect(proof.length).toBe(refPathLen(index, size));
    expect(codeOf(() => verifyInclusion(index, size, h[0]!, rootOf(size), proof))).toBe('OK');
    expect(codeOf(() => verifyInclusion(index, size, h[0]!, rootOf(size), proof.with(0, flipBit(proof[0]!, 0))))).toBe(
      'ROOT_MISMATCH',
    );
    expect(codeOf(() => verifyInclusion(index, size, h[0]!, rootOf(size - 1n), proof))).toBe('ROOT_MISMATCH');
    expect(codeOf(() => verifyInclusion(index, size, h[1]!, rootOf(size), proof))).toBe('ROOT_MISMATCH');
  });

  it.each([
    [2n ** 55n + 3n, 2n ** 60n + 12345n],
    [2n ** 53n, 2n ** 53n + 1n],
    [12345n, U64_MAX],
  ])('consistency from %s to %s', (size1, size2) => {
    const proof = consistencyProof(size1, size2, virtualNode);
    expect(proof.length).toBe(refProofLen(size1, size2));
    expect(codeOf(() => verifyConsistency(size1, size2, rootOf(size1), rootOf(size2), proof))).toBe('OK');
    expect(codeOf(() => verifyConsistency(size1, size2, rootOf(size1 + 1n), rootOf(size2), proof))).toBe('ROOT_MISMATCH');
    expect(codeOf(() => verifyConsistency(size1, size2, rootOf(size1), rootOf(size2 - 1n), proof))).toBe('ROOT_MISMATCH');
  });
});

describe('incremental appender (compact range)', () => {
  function mulberry32(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  it.each([1, 2, 3])('random batches (seed %i) give the reference roots and nodes', (seed) => {
    const rand = mulberry32(seed);
    const all = Array.from({ length: 300 }, (_, i) => leafHash(utf8(`batch leaf ${seed}/${i}`)));
    const nodes = new Map<string, StoredNode>();
    let size = 0n;
    let edge: readonly Uint8Array[] = [];
    while (size < BigInt(all.length)) {
      const take = Math.min(1 + Math.floor(rand() * 37), all.length - Number(size));
      const batch = all.slice(Number(size), Number(size) + take);
      const res = appendLeaves(size, edge, batch);
      for (const node of res.nodes) {
        expect(nodes.has(nodeKey(node))).toBe(false); // written once, never rewritten
        nodes.set(nodeKey(node), node);
      }
      size = res.size;
      edge = res.rightEdge;
      expect(size).toBe(BigInt(Number(size)));
      expect(toHex(res.root)).toBe(toHex(rootFromLeafHashes(all.slice(0, Number(size)))));
      // The right edge is readable back from the store.
      expect(hex(rootNodes(size).map((id) => nodes.get(nodeKey(id))!.hash))).toEqual(hex(edge));
    }
    const n = all.length;
    expect(nodes.size).toBe(2 * n - n.toString(2).replaceAll('0', '').length);
    for (const node of nodes.values()) {
      const begin = Number(node.index) << node.level;
      expect(toHex(node.hash)).toBe(toHex(rootFromLeafHashes(all.slice(begin, begin + (1 << node.level)))));
    }
  });

  it('reloads from stored right-edge hashes and checks them', () => {
    const edge = rootNodes(11n).map((id) => getNode(id)!);
    const range = CompactRange.fromHashes(11n, edge);
    expect(toHex(range.root())).toBe(toHex(roots[11]!));
    range.appendAll(leaves.slice(11, 30));
    expect(range.size).toBe(30n);
    expect(toHex(range.root())).toBe(toHex(roots[30]!));
    expect(range.nodes().map(({ level, index }) => ({ level, index }))).toEqual(rootNodes(30n));
    expect(codeOf(() => CompactRange.fromHashes(11n, edge.slice(1)))).toBe('COMPACT_RANGE_INVALID');
    expect(codeOf(() => CompactRange.fromHashes(12n, edge))).toBe('COMPACT_RANGE_INVALID');
    expect(codeOf(() => CompactRange.fromHashes(11n, edge.with(0, new Uint8Array(31))))).toBe('HASH_SIZE');
    expect(codeOf(() => CompactRange.empty().append(new Uint8Array(0)))).toBe('HASH_SIZE');
    expect(toHex(CompactRange.empty().root())).toBe(toHex(emptyRoot()));
  });
});

// ---------------------------------------------------------------------------------------------
// transparency-dev/merkle vectors, replayed from ../shared (never copied into the project).

interface InclusionVector {
  leafIdx: bigint;
  treeSize: bigint;
  root: Uint8Array;
  leafHash: Uint8Array;
  proof: Uint8Array[];
  wantErr: boolean;
}

interface ConsistencyVector {
  size1: bigint;
  size2: bigint;
  root1: Uint8Array;
  root2: Uint8Array;
  proof: Uint8Array[];
  wantErr: boolean;
}

function listJson(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listJson(path.join(dir, e.name)) : e.name.endsWith('.json') ? [path.join(dir, e.name)] : []))
    .sort();
}

/** JSON.parse with integer fields kept exact: Node 20 has no reviver `context.source`, so quote them first. */
function readVector(file: string): Record<string, unknown> {
  const text = readFileSync(file, 'utf8').replace(/"(leafIdx|treeSize|size1|size2)"\s*:\s*(-?\d+)/g, '"$1": "$2"');
  return JSON.parse(text) as Record<string, unknown>;
}

function big(v: unknown): bigint {
  if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw new Error(`not an integer: ${String(v)}`);
  return BigInt(v);
}

function b64(v: unknown): Uint8Array {
  const out = typeof v === 'string' ? fromB64(v) : null;
  if (out === null) throw new Error(`not base64: ${String(v)}`);
  return out;
}

function bool(v: unknown): boolean {
  if (typeof v !== 'boolean') throw new Error('wantErr is not a boolean');
  return v;
}

const b64List = (v: unknown): Uint8Array[] => (v === null ? [] : (v as unknown[]).map(b64));

function inclusionVector(file: string): InclusionVector {
  const j = readVector(file);
  return {
    leafIdx: big(j.leafIdx),
    treeSize: big(j.treeSize),
    root: b64(j.root),
    leafHash: b64(j.leafHash),
    proof: b64List(j.proof),
    wantErr: bool(j.wantErr),
  };
}

function consistencyVector(file: string): ConsistencyVector {
  const j = readVector(file);
  return {
    size1: big(j.size1),
    size2: big(j.size2),
    root1: b64(j.root1),
    root2: b64(j.root2),
    proof: b64List(j.proof),
    wantErr: bool(j.wantErr),
  };
}

if (!existsSync(VECTORS)) {
  describe.skip(`transparency-dev vectors: ${VECTORS} does not exist (tests run from the repo root beside ../shared)`, () => {
    it('replays the inclusion and consistency vectors', () => {});
  });
} else {
  describe('transparency-dev/merkle vectors', () => {
    const inclusionFiles = listJson(path.join(VECTORS, 'inclusion'));
    const consistencyFiles = listJson(path.join(VECTORS, 'consistency'));
    const rel = (f: string): string => path.relative(VECTORS, f);

    it('finds both vector sets', () => {
      expect(inclusionFiles.length).toBeGreaterThan(50);
      expect(consistencyFiles.length).toBeGreaterThan(50);
    });

    it.each(inclusionFiles.map((f) => [rel(f), f]))('%s', (_name, file) => {
      const v = inclusionVector(file);
      const code = codeOf(() => verifyInclusion(v.leafIdx, v.treeSize, v.leafHash, v.root, v.proof));
      if (v.wantErr) expect(code).not.toBe('OK');
      else {
        expect(code).toBe('OK');
        expect(toHex(rootFromInclusionProof(v.leafIdx, v.treeSize, v.leafHash, v.proof))).toBe(toHex(v.root));
      }
    });

    it.each(consistencyFiles.map((f) => [rel(f), f]))('%s', (_name, file) => {
      const v = consistencyVector(file);
      const code = codeOf(() => verifyConsistency(v.size1, v.size2, v.root1, v.root2, v.proof));
      expect(code === 'OK').toBe(!v.wantErr);
    });
  });
}
