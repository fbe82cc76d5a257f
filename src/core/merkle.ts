// RFC 6962 / RFC 9162 Merkle tree maths over SHA-256: hashing, proof generation from stored
// subtree hashes, proof verification and an incremental appender (compact range). Pure: no I/O.
//
// Storage convention. The store holds the hash of every *perfect* subtree, addressed by
// NodeId { level, index }: the subtree of 2^level leaves [index·2^level, (index+1)·2^level).
// Level 0 holds the leaf hashes. A node is written once, when its last leaf is appended, and never
// changes (a tree of n leaves has 2n − popcount(n) of them). Subtrees on the right edge that are not
// perfect are never stored: they are folded from perfect ones (`rootFromNodes`), so a proof needs
// O(log n) reads, listed in advance by `planNodes(inclusionProofPlan(...))`.
//
// Sizes and indexes are bigint and must fit in uint64, like the C2SP formats that carry them.
import { bytesEqual } from './bytes.ts';
import { sha256Parts } from './platform.ts';

/** SHA-256 output size. */
export const HASH_SIZE = 32;
const U64_MAX = (1n << 64n) - 1n;
const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

export const MERKLE_ERROR_CODES = [
  'INDEX_OUT_OF_RANGE', // index < 0, index ≥ size or index > 2^64 − 1
  'SIZE_OUT_OF_RANGE', // size outside uint64, size1 > size2, or a consistency proof from size 0
  'PROOF_SIZE', // wrong number of proof hashes for the given index/sizes
  'HASH_SIZE', // a leaf hash, root or proof hash that is not 32 bytes
  'ROOT_MISMATCH', // the root computed from a proof differs from the expected one
  'NODE_MISSING', // the store did not return a 32-byte hash for a node a proof needs
  'COMPACT_RANGE_INVALID', // right-edge hashes that do not match the tree size
] as const;
export type MerkleErrorCode = (typeof MERKLE_ERROR_CODES)[number];

export class MerkleError extends Error {
  override readonly name = 'MerkleError';
  readonly code: MerkleErrorCode;
  /** For ROOT_MISMATCH: the root the caller expected. */
  readonly expectedRoot: Uint8Array | undefined;
  /** For ROOT_MISMATCH: the root computed from the proof. */
  readonly computedRoot: Uint8Array | undefined;

  constructor(code: MerkleErrorCode, message: string, roots?: { expected: Uint8Array; computed: Uint8Array }) {
    super(message);
    this.code = code;
    this.expectedRoot = roots?.expected;
    this.computedRoot = roots?.computed;
  }
}

/** Perfect subtree of 2^level leaves starting at leaf index·2^level. */
export interface NodeId {
  readonly level: number;
  readonly index: bigint;
}

export interface StoredNode extends NodeId {
  readonly hash: Uint8Array;
}

/**
 * One proof hash, as the perfect subtrees that make it up, left to right. A single id is a stored
 * node; several ids are a right-edge subtree whose hash is their right fold (`rootFromNodes`).
 */
export type ProofElementPlan = readonly NodeId[];

/** Node store lookup; undefined when absent. */
export type GetNode = (id: NodeId) => Uint8Array | undefined;

// ---------------------------------------------------------------------------------------------
// Hashing

/** RFC 9162 §2.1.1: leaf hash = SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Uint8Array {
  return sha256Parts(LEAF_PREFIX, data);
}

/** RFC 9162 §2.1.1: interior node hash = SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256Parts(NODE_PREFIX, left, right);
}

/** RFC 9162 §2.1.1: MTH({}) = SHA-256() of the empty string. */
export function emptyRoot(): Uint8Array {
  return sha256Parts();
}

/** Reference MTH over leaf hashes by the RFC 9162 §2.1.1 recursion (tests, small trees). */
export function rootFromLeafHashes(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return emptyRoot();
  const mth = (lo: number, hi: number): Uint8Array => {
    if (hi - lo === 1) return hashes[lo]!;
    const k = largestPow2Below(hi - lo); // k < n ≤ 2k
    return nodeHash(mth(lo, lo + k), mth(lo + k, hi));
  };
  return mth(0, hashes.length);
}

/** Right fold of perfect subtree hashes listed left to right, e.g. those of `rootNodes(size)`. */
export function rootFromNodes(hashes: readonly Uint8Array[]): Uint8Array {
  let acc = hashes[hashes.length - 1];
  if (acc === undefined) return emptyRoot();
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i]!, acc);
  return acc;
}

// ---------------------------------------------------------------------------------------------
// Node ids and proof plans (what the store must provide)

/** Map key for a node id, e.g. "3/17". */
export function nodeKey(id: NodeId): string {
  return `${id.level}/${id.index}`;
}

/**
 * Minimal decomposition of the leaf range [begin, end) into perfect subtrees, left to right. For
 * [0, size) these are the right-edge subtrees of the tree, largest first: the tree root is their
 * right fold and they are exactly the state `CompactRange` needs.
 */
export function rangeNodes(begin: bigint, end: bigint): NodeId[] {
  checkU64(begin, 'begin', 'INDEX_OUT_OF_RANGE');
  checkU64(end, 'end', 'SIZE_OUT_OF_RANGE');
  if (begin > end) throw new MerkleError('SIZE_OUT_OF_RANGE', `range begin ${begin} > end ${end}`);
  const out: NodeId[] = [];
  while (begin < end) {
    let level = bitLen(end - begin) - 1;
    if (begin !== 0n) level = Math.min(level, trailingZeros(begin));
    out.push({ level, index: begin >> BigInt(level) });
    begin += 1n << BigInt(level);
  }
  return out;
}

/** The perfect subtrees whose right fold is the root of a tree of `size` leaves. */
export function rootNodes(size: bigint): NodeId[] {
  return rangeNodes(0n, size);
}

/** RFC 9162 §2.1.3.1 PATH(index, D[size]) as stored nodes, bottom to top. */
export function inclusionProofPlan(index: bigint, size: bigint): ProofElementPlan[] {
  checkU64(size, 'size', 'SIZE_OUT_OF_RANGE');
  checkU64(index, 'index', 'INDEX_OUT_OF_RANGE');
  if (index >= size) throw new MerkleError('INDEX_OUT_OF_RANGE', `index ${index} is not below size ${size}`);
  return pathPlan(index, 0, size);
}

/**
 * RFC 9162 §2.1.4.1 PROOF(size1, D[size2]) as stored nodes. Empty when size1 = size2; a proof from
 * the empty tree is refused (SIZE_OUT_OF_RANGE), as verification refuses it.
 */
export function consistencyProofPlan(size1: bigint, size2: bigint): ProofElementPlan[] {
  checkSizes(size1, size2);
  if (size1 === size2) return [];
  // The last perfect subtree of the old tree: (level, index) with 2^level the lowest bit of size1.
  const level = trailingZeros(size1);
  const index = (size1 - 1n) >> BigInt(level);
  const path = pathPlan(index, level, size2);
  // RFC 9162 §2.1.4.1: when size1 is a power of 2 its root is the client's own first_hash.
  return index === 0n ? path : [[{ level, index }], ...path];
}

/** Distinct nodes a plan reads, for one batched store query. */
export function planNodes(plan: readonly ProofElementPlan[]): NodeId[] {
  const seen = new Map<string, NodeId>();
  for (const el of plan) for (const id of el) seen.set(nodeKey(id), id);
  return [...seen.values()];
}

/** Assembles proof hashes from a plan, folding right-edge elements. */
export function buildProof(plan: readonly ProofElementPlan[], getNode: GetNode): Uint8Array[] {
  return plan.map((el) =>
    rootFromNodes(
      el.map((id) => {
        const h = getNode(id);
        if (h === undefined || h.length !== HASH_SIZE) {
          throw new MerkleError('NODE_MISSING', `no stored hash for node ${nodeKey(id)}`);
        }
        return h;
      }),
    ),
  );
}

/** Inclusion proof for leaf `index` in the tree of `size` leaves, from stored nodes. */
export function inclusionProof(index: bigint, size: bigint, getNode: GetNode): Uint8Array[] {
  return buildProof(inclusionProofPlan(index, size), getNode);
}

/** Consistency proof from size1 to size2, from stored nodes. */
export function consistencyProof(size1: bigint, size2: bigint, getNode: GetNode): Uint8Array[] {
  return buildProof(consistencyProofPlan(size1, size2), getNode);
}

/**
 * Path from node (level, index) to the root of a tree of `size` leaves: siblings bottom to top.
 * Below the level where the paths to `index` and to the last node diverge ("inner") every sibling
 * is perfect except possibly the topmost, which may be the partial right edge; above it ("border")
 * siblings are the perfect left subtrees.
 */
function pathPlan(index: bigint, level: number, size: bigint): ProofElementPlan[] {
  const last = (size - 1n) >> BigInt(level);
  const inner = bitLen(index ^ last);
  const out: ProofElementPlan[] = [];
  for (let h = 0; h < inner; h++) {
    const lv = level + h;
    const sibling = (index >> BigInt(h)) ^ 1n;
    const begin = sibling << BigInt(lv);
    const end = begin + (1n << BigInt(lv));
    out.push(end <= size ? [{ level: lv, index: sibling }] : rangeNodes(begin, size));
  }
  for (let h = inner, rest = index >> BigInt(inner); rest !== 0n; h++, rest >>= 1n) {
    if ((rest & 1n) === 1n) out.push([{ level: level + h, index: rest - 1n }]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Verification

/** Expected number of hashes in an inclusion proof (validated arguments). */
export function inclusionProofSize(index: bigint, size: bigint): number {
  checkU64(size, 'size', 'SIZE_OUT_OF_RANGE');
  checkU64(index, 'index', 'INDEX_OUT_OF_RANGE');
  if (index >= size) throw new MerkleError('INDEX_OUT_OF_RANGE', `index ${index} is not below size ${size}`);
  const inner = bitLen(index ^ (size - 1n));
  return inner + popCount(index >> BigInt(inner));
}

/** Expected number of hashes in a consistency proof (validated arguments). */
export function consistencyProofSize(size1: bigint, size2: bigint): number {
  checkSizes(size1, size2);
  if (size1 === size2) return 0;
  const level = trailingZeros(size1);
  const index = (size1 - 1n) >> BigInt(level);
  const inner = bitLen(index ^ ((size2 - 1n) >> BigInt(level)));
  return (index === 0n ? 0 : 1) + inner + popCount(index >> BigInt(inner));
}

/** RFC 9162 §2.1.3.2: the root implied by an inclusion proof. Throws MerkleError. */
export function rootFromInclusionProof(
  index: bigint,
  size: bigint,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array {
  const want = inclusionProofSize(index, size); // step 1: index < size
  checkHash(leaf, 'leaf hash');
  if (proof.length !== want) {
    throw new MerkleError('PROOF_SIZE', `inclusion proof has ${proof.length} hashes, want ${want}`);
  }
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`));
  let fn = index; // step 2
  let sn = size - 1n;
  let r = leaf; // step 3
  for (const p of proof) {
    if (sn === 0n) throw new MerkleError('PROOF_SIZE', 'inclusion proof is too long'); // step 4: sn = 0 fails
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      // step 4: right-shift until LSB(fn) is set or fn is 0
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new MerkleError('PROOF_SIZE', 'inclusion proof is too short'); // step 5
  return r;
}

/** RFC 9162 §2.1.3.2: throws MerkleError unless the proof puts `leaf` at `index` under `root`. */
export function verifyInclusion(
  index: bigint,
  size: bigint,
  leaf: Uint8Array,
  root: Uint8Array,
  proof: readonly Uint8Array[],
): void {
  matchRoot(rootFromInclusionProof(index, size, leaf, proof), root);
}

/**
 * RFC 9162 §2.1.4.2: checks the proof against root1 and returns the size2 root it implies.
 * size1 = size2 needs an empty proof and returns root1; size1 = 0 is refused (a proof from the
 * empty tree proves nothing). Throws MerkleError (ROOT_MISMATCH carries root1 and the computed one).
 */
export function rootFromConsistencyProof(
  size1: bigint,
  size2: bigint,
  root1: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array {
  const want = consistencyProofSize(size1, size2);
  if (proof.length !== want) {
    throw new MerkleError('PROOF_SIZE', `consistency proof has ${proof.length} hashes, want ${want}`); // also step 1
  }
  if (size1 === size2) return root1;
  checkHash(root1, 'root1');
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`));
  const path = (size1 & (size1 - 1n)) === 0n ? [root1, ...proof] : proof; // step 2: prepend first_hash
  let fn = size1 - 1n; // step 3
  let sn = size2 - 1n;
  while ((fn & 1n) === 1n) {
    // step 4
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0]!; // step 5
  let sr = fr;
  for (const c of path.slice(1)) {
    // step 6
    if (sn === 0n) throw new MerkleError('PROOF_SIZE', 'consistency proof is too long');
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new MerkleError('PROOF_SIZE', 'consistency proof is too short'); // step 7: sn = 0
  matchRoot(fr, root1); // step 7: fr = first_hash
  return sr;
}

/** RFC 9162 §2.1.4.2: throws MerkleError unless the tree of size2/root2 extends size1/root1. */
export function verifyConsistency(
  size1: bigint,
  size2: bigint,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): void {
  matchRoot(rootFromConsistencyProof(size1, size2, root1, proof), root2); // step 7: sr = second_hash
}

function matchRoot(computed: Uint8Array, expected: Uint8Array): void {
  if (!bytesEqual(computed, expected)) {
    throw new MerkleError('ROOT_MISMATCH', 'computed root does not match the expected root', { expected, computed });
  }
}

// ---------------------------------------------------------------------------------------------
// Incremental appender

/**
 * The right-edge perfect subtrees of a tree (those of `rootNodes(size)`), enough to append leaves
 * and compute roots without reading anything else. Used by the sequencer for batched integration.
 */
export class CompactRange {
  #size: bigint;
  #hashes: Uint8Array[];

  private constructor(size: bigint, hashes: Uint8Array[]) {
    this.#size = size;
    this.#hashes = hashes;
  }

  static empty(): CompactRange {
    return new CompactRange(0n, []);
  }

  /** From the stored hashes of `rootNodes(size)`, in that order. */
  static fromHashes(size: bigint, hashes: readonly Uint8Array[]): CompactRange {
    const ids = rootNodes(size);
    if (hashes.length !== ids.length) {
      const msg = `a tree of size ${size} has ${ids.length} right-edge nodes, got ${hashes.length}`;
      throw new MerkleError('COMPACT_RANGE_INVALID', msg);
    }
    hashes.forEach((h, i) => checkHash(h, `right-edge hash ${i}`));
    return new CompactRange(size, hashes.map((h) => new Uint8Array(h)));
  }

  get size(): bigint {
    return this.#size;
  }

  /** The right-edge nodes with their ids, largest first. */
  nodes(): StoredNode[] {
    return rootNodes(this.#size).map((id, i) => ({ ...id, hash: this.#hashes[i]! }));
  }

  root(): Uint8Array {
    return rootFromNodes(this.#hashes);
  }

  /** Appends one leaf hash; returns the nodes it completes (the leaf itself first) to store. */
  append(leaf: Uint8Array): StoredNode[] {
    checkHash(leaf, 'leaf hash');
    if (this.#size === U64_MAX) throw new MerkleError('SIZE_OUT_OF_RANGE', 'tree is full');
    const index = this.#size;
    const created: StoredNode[] = [{ level: 0, index, hash: leaf }];
    let hash = leaf;
    // Each trailing 1 bit of the old size is a perfect subtree the new leaf completes a parent of.
    for (let level = 0; ((index >> BigInt(level)) & 1n) === 1n; level++) {
      hash = nodeHash(this.#hashes.pop()!, hash);
      created.push({ level: level + 1, index: index >> BigInt(level + 1), hash });
    }
    this.#hashes.push(hash);
    this.#size = index + 1n;
    return created;
  }

  /** Appends leaf hashes in order; returns every node to store. */
  appendAll(leaves: readonly Uint8Array[]): StoredNode[] {
    return leaves.flatMap((l) => this.append(l));
  }
}

export interface AppendResult {
  readonly size: bigint;
  readonly root: Uint8Array;
  /** New perfect subtrees (leaves included) to store; existing nodes never change. */
  readonly nodes: readonly StoredNode[];
  /** Right edge of the new tree: the hashes of `rootNodes(size)`. */
  readonly rightEdge: readonly Uint8Array[];
}

/** Appends a batch to a tree given by its size and right-edge hashes (`rootNodes(size)`). */
export function appendLeaves(size: bigint, rightEdge: readonly Uint8Array[], leaves: readonly Uint8Array[]): AppendResult {
  const range = CompactRange.fromHashes(size, rightEdge);
  const nodes = range.appendAll(leaves);
  return { size: range.size, root: range.root(), nodes, rightEdge: range.nodes().map((n) => n.hash) };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function checkU64(v: bigint, what: string, code: MerkleErrorCode): void {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) throw new MerkleError(code, `${what} is not a uint64`);
}

function checkSizes(size1: bigint, size2: bigint): void {
  checkU64(size1, 'size1', 'SIZE_OUT_OF_RANGE');
  checkU64(size2, 'size2', 'SIZE_OUT_OF_RANGE');
  if (size1 > size2) throw new MerkleError('SIZE_OUT_OF_RANGE', `size1 ${size1} > size2 ${size2}`);
  if (size1 === 0n) throw new MerkleError('SIZE_OUT_OF_RANGE', 'a consistency proof from the empty tree is meaningless');
}

function checkHash(h: Uint8Array, what: string): void {
  if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
    throw new MerkleError('HASH_SIZE', `${what} is not ${HASH_SIZE} bytes`);
  }
}

function bitLen(x: bigint): number {
  return x === 0n ? 0 : x.toString(2).length;
}

function popCount(x: bigint): number {
  let n = 0;
  for (const c of x.toString(2)) if (c === '1') n++;
  return n;
}

/** Trailing zero bits of x > 0. */
function trailingZeros(x: bigint): number {
  let n = 0;
  while ((x & 1n) === 0n) {
    x >>= 1n;
    n++;
  }
  return n;
}

function largestPow2Below(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
