// The log's proof read side: receipts for bundles, inclusion and consistency proofs, and entries,
// each assembled from O(log n) stored nodes up to a signed checkpoint.
import { and, asc, eq, gte, lt, sql } from 'drizzle-orm';
import { toB64 } from '../core/bytes.ts';
import { logLeafBytes } from '../core/binding-v2.ts';
import { SETTLEMENT_LOG_KEY_PREFIX as SETTLEMENT_KEY, settlementLeaf } from '../core/settlement.ts';
import type { Receipt, Statement } from '../core/schemas.ts';
import { type NodeId, buildProof, consistencyProofPlan, inclusionProofPlan, nodeKey, planNodes } from '../core/merkle.ts';
import type { Db } from '../db/index.ts';
import type { AttestationRow } from '../service/attest.ts';
import { type ConsistencyProofResponse, type InclusionProofResponse, type LogEntry, outOfRange } from './api.ts';
import { type StoreReads, logTables as t } from './store-reads.ts';

/** Most entries one `GET /v1/log/entries` returns. */
export const MAX_ENTRIES = 1000;

export interface ProofReads {
  receipt(row: Pick<AttestationRow, 'logIndex'>): Promise<Receipt | undefined>;
  inclusionProof(index: number, treeSize: number): Promise<InclusionProofResponse>;
  consistencyProof(from: number, to: number): Promise<ConsistencyProofResponse>;
  entries(start: number, end: number): Promise<LogEntry[]>;
}

export function createProofReads(db: Db, origin: string, reads: StoreReads): ProofReads {
  const { currentCheckpoint, currentSize, readNodes } = reads;

  async function receipt(row: Pick<AttestationRow, 'logIndex'>): Promise<Receipt | undefined> {
    if (row.logIndex === null || row.logIndex === undefined) return undefined;
    const index = row.logIndex;
    const cp = await currentCheckpoint(index + 1);
    if (!cp || index >= cp.size) return undefined; // not reachable: the index commits with its checkpoint
    const plan = inclusionProofPlan(BigInt(index), BigInt(cp.size));
    const leafId: NodeId = { level: 0, index: BigInt(index) };
    const nodes = await readNodes(db, [leafId, ...planNodes(plan)]);
    const leaf = nodes.get(nodeKey(leafId));
    if (!leaf) throw new Error(`log store is missing leaf ${index}`);
    return {
      log_origin: origin,
      log_index: String(index),
      leaf_hash: toB64(leaf),
      tree_size: String(cp.size),
      inclusion_proof: buildProof(plan, (id) => nodes.get(nodeKey(id))).map(toB64),
      checkpoint: cp.note,
    };
  }

  async function inclusionProof(index: number, treeSize: number): Promise<InclusionProofResponse> {
    const current = await currentSize(treeSize);
    if (treeSize < 1 || treeSize > current) throw outOfRange(`tree_size must be in [1, ${current}]`);
    if (index < 0 || index >= treeSize) throw outOfRange(`index must be below tree_size ${treeSize}`);
    const plan = inclusionProofPlan(BigInt(index), BigInt(treeSize));
    const leafId: NodeId = { level: 0, index: BigInt(index) };
    const nodes = await readNodes(db, [leafId, ...planNodes(plan)]);
    const leaf = nodes.get(nodeKey(leafId));
    if (!leaf) throw new Error(`log store is missing leaf ${index}`);
    const hashes = buildProof(plan, (id) => nodes.get(nodeKey(id))).map(toB64);
    return { index, tree_size: treeSize, leaf_hash: toB64(leaf), hashes };
  }

  async function consistencyProof(from: number, to: number): Promise<ConsistencyProofResponse> {
    const current = await currentSize(to);
    if (to > current) throw outOfRange(`to must be at most the current size ${current}`);
    if (from < 1) throw outOfRange('from must be at least 1: a proof from the empty tree proves nothing');
    if (from > to) throw outOfRange('from must not exceed to');
    const plan = consistencyProofPlan(BigInt(from), BigInt(to));
    const nodes = await readNodes(db, planNodes(plan));
    return { from, to, hashes: buildProof(plan, (id) => nodes.get(nodeKey(id))).map(toB64) };
  }

  async function entries(start: number, end: number): Promise<LogEntry[]> {
    const current = await currentSize(end);
    if (end > current) throw outOfRange(`end must be at most the current size ${current}`);
    if (start >= end) throw outOfRange('start must be below end');
    if (end - start > MAX_ENTRIES) throw outOfRange(`at most ${MAX_ENTRIES} entries per request`);
    const rows = await db
      .select({ idx: t.leaves.idx, key: t.leaves.attestationId, leafHash: t.leaves.leafHash, statement: sql<unknown>`${t.att.bundle} -> 'attestation' -> 'statement'` })
      .from(t.leaves)
      .leftJoin(t.att, eq(t.att.id, t.leaves.attestationId))
      .where(and(gte(t.leaves.idx, start), lt(t.leaves.idx, end)))
      .orderBy(asc(t.leaves.idx));
    if (rows.length !== end - start) throw new Error(`log store returned ${rows.length} entries for [${start}, ${end})`);
    return rows.map((r) => {
      // a settlement's leaf: its digest, typed (the key is `settlement:` + the digest's hex)
      if (r.statement === null && r.key.startsWith(SETTLEMENT_KEY)) {
        return { index: r.idx, leaf_hash: toB64(r.leafHash), leaf: Buffer.from(settlementLeaf(`sha256:${r.key.slice(SETTLEMENT_KEY.length)}`)).toString('utf8') };
      }
      if (r.statement === null) throw new Error(`log leaf ${r.idx} belongs to no attestation or settlement`);
      const statement = typeof r.statement === 'string' ? (JSON.parse(r.statement) as unknown) : r.statement;
      return { index: r.idx, leaf_hash: toB64(r.leafHash), leaf: Buffer.from(logLeafBytes(statement as Statement)).toString('utf8') };
    });
  }

  return { receipt, inclusionProof, consistencyProof, entries };
}
