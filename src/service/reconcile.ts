// POST /v1/reconcile's lookup: the attested charges of a tenant's billing window, read from the
// store — a batch of references at a time for the invoice lines, page by page for the unbilled.
import { sql } from 'drizzle-orm';
import type { AttestedCharge, AttestedLookup, RefKind } from '../core/reconcile.ts';
import { type Db, rowsOf } from '../db/index.ts';
import { type Principal, requireScope, requireTenant } from './auth.ts';

const PAGE = 5000;

type Row = { id: string; event_id: string; charge_micros: string | number; currency: string; cursor: string | number };
const charge = (r: Row): AttestedCharge => ({ attestation_id: r.id, event_id: r.event_id, charge_micros: BigInt(String(r.charge_micros)), currency: r.currency });

/** The attested charges of `tenantId`'s window `windowId` that `principal` may read (as GET /v1/attestations). */
export function storeLookup(db: Db, principal: Principal, tenantId: string, windowId: string): AttestedLookup {
  requireScope(principal, 'read');
  requireTenant(principal, tenantId);
  const consumer = principal.consumer;
  const mine = consumer !== undefined ? sql`and (bundle->'consumer_pop'->>'consumer_id') = ${consumer}` : sql``;
  return {
    async find(refs: readonly { kind: RefKind; ref: string }[]) {
      const events = JSON.stringify(refs.filter((r) => r.kind === 'event_id').map((r) => r.ref));
      const ids = JSON.stringify(refs.filter((r) => r.kind === 'attestation_id').map((r) => r.ref));
      const rows = rowsOf<Row>(
        await db.execute(sql`select id, event_id, charge_micros, currency, cursor from attestations
          where tenant_id = ${tenantId} and billing_window_id = ${windowId} ${mine}
          and (event_id = any(array(select jsonb_array_elements_text(${events}::jsonb))) or id = any(array(select jsonb_array_elements_text(${ids}::jsonb))))`),
      );
      const out = new Map<string, AttestedCharge>();
      for (const r of rows) {
        const a = charge(r);
        out.set(`event_id:${r.event_id}`, a);
        out.set(`attestation_id:${r.id}`, a);
      }
      return out;
    },
    async *all() {
      let after = 0;
      for (;;) {
        const rows = rowsOf<Row>(
          await db.execute(sql`select id, event_id, charge_micros, currency, cursor from attestations
            where tenant_id = ${tenantId} and billing_window_id = ${windowId} ${mine} and cursor > ${after}
            order by cursor limit ${PAGE}`),
        );
        for (const r of rows) yield charge(r);
        if (rows.length < PAGE) return;
        after = Number(rows.at(-1)!.cursor);
      }
    },
  };
}
