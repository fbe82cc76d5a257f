// The admin API (/v1/admin/*): tenants, consumers, API keys, tariffs, plans, subscriptions, the
// signing keys, revocations, webhooks and proof jobs. Mounted by createApp (app.ts).
import { Hono, type Context } from 'hono';
import { maySee, requireEveryTenant, requireScope, requireTenant } from '../service/auth.ts';
import type { ServiceDeps } from '../service/container.ts';
import type { PublishedTariff } from '../service/tariffs.ts';
import { planView } from '../service/plans.ts';
import type { Env } from './app.ts';
import { query } from './input.ts';
import { SettlementListQuery, type TariffView } from './schemas.ts';

type Middleware = (c: Context<Env>, next: () => Promise<void>) => Promise<void>;

/** The admin sub-app: every route needs an admin key (`authed`, then the admin scope). */
export function adminRoutes(deps: ServiceDeps, authed: Middleware, jsonBody: (c: Context) => Promise<unknown>): Hono<Env> {
  // An admin key with a tenant allowlist administers those tenants only: a route for one tenant
  // (named in the path or the body) checks it (403 TENANT_FORBIDDEN), a list keeps that tenant's
  // records, and a route that acts for every tenant needs an admin key without an allowlist
  // (403 FORBIDDEN). The tariff and plan catalogues are shared by all tenants: such a key reads
  // them but does not publish.
  const admin = new Hono<Env>();
  admin.use('*', authed, async (c, next) => {
    requireScope(c.get('principal'), 'admin');
    await next();
  });
  const everyTenant = async (c: Context<Env>, next: () => Promise<void>) => {
    requireEveryTenant(c.get('principal'));
    await next();
  };
  // the tenant a route acts for, from the path: checked before anything is read or written
  const pathTenant = (c: Context<Env>) => {
    const id = c.req.param('tenant') ?? '';
    requireTenant(c.get('principal'), id);
    return id;
  };
  // a request body naming its tenant (`field`): checked when it is a string; anything else is the
  // service's 400
  const bodyFor = async (c: Context<Env>, field: string) => {
    const body = await jsonBody(c);
    const id = body && typeof body === 'object' ? (body as Record<string, unknown>)[field] : undefined;
    if (typeof id === 'string') requireTenant(c.get('principal'), id);
    return body;
  };
  for (const path of ['/api-keys', '/api-keys/*', '/keys/*', '/revocations/*', '/webhooks', '/webhooks/*', '/proofs/*']) admin.use(path, everyTenant);
  admin.on('POST', ['/tariffs', '/plans'], everyTenant);
  admin.post('/tenants', async (c) => {
    const r = await deps.tariffs.createTenant(await bodyFor(c, 'id'));
    return c.json(r.tenant, r.created ? 201 : 200);
  });
  admin.get('/tenants', async (c) => c.json({ items: (await deps.tariffs.listTenants()).filter((t) => maySee(c.get('principal'), t.id)) }));
  admin.put('/tenants/:tenant/consumer-pop', async (c) => c.json(await deps.consumers.setPopPolicy(pathTenant(c), await jsonBody(c))));
  // bilateral metering: consumers and their keys
  admin.post('/consumers', async (c) => {
    const r = await deps.consumers.register(await bodyFor(c, 'tenant_id'));
    return c.json(r.consumer, r.created ? 201 : 200);
  });
  admin.get('/consumers', async (c) => {
    const tenant = c.req.query('tenant_id');
    if (tenant !== undefined) requireTenant(c.get('principal'), tenant);
    return c.json({ items: (await deps.consumers.list(tenant)).filter((x) => maySee(c.get('principal'), x.tenant_id)) });
  });
  admin.get('/consumers/:tenant/:consumer', async (c) => c.json(await deps.consumers.view(pathTenant(c), c.req.param('consumer') ?? '')));
  admin.post('/consumers/:tenant/:consumer/keys', async (c) => c.json(await deps.consumers.rotate(pathTenant(c), c.req.param('consumer') ?? '', await jsonBody(c)), 201));
  admin.post('/consumers/:tenant/:consumer/keys/:kid/revoke', async (c) =>
    c.json(await deps.consumers.revoke(pathTenant(c), c.req.param('consumer') ?? '', c.req.param('kid') ?? '', await jsonBody(c))),
  );
  admin.get('/tenants/:tenant', async (c) => c.json(await deps.tariffs.getTenant(pathTenant(c))));
  admin.put('/tenants/:tenant/proof-policy', async (c) => c.json(await deps.policies.set(pathTenant(c), await jsonBody(c))));
  admin.get('/tenants/:tenant/default-tariffs', async (c) => c.json({ items: await deps.attest.defaults.list(pathTenant(c)) }));
  admin.put('/tenants/:tenant/default-tariffs/:meter', async (c) => {
    const r = await deps.attest.defaults.set(pathTenant(c), c.req.param('meter') ?? '', await jsonBody(c));
    return c.json(r.item, r.created ? 201 : 200);
  });
  admin.delete('/tenants/:tenant/default-tariffs/:meter', async (c) => {
    await deps.attest.defaults.remove(pathTenant(c), c.req.param('meter') ?? '');
    return c.body(null, 204);
  });
  admin.post('/api-keys', async (c) => c.json(await deps.admin.createApiKey(await jsonBody(c)), 201));
  admin.get('/api-keys', async (c) => c.json({ items: await deps.admin.listApiKeys() }));
  admin.delete('/api-keys/:id', async (c) => c.json(await deps.admin.revokeApiKey(c.req.param('id') ?? '')));
  admin.post('/tariffs', async (c) => {
    const r = await deps.tariffs.publish(await jsonBody(c));
    const t = r.tariff;
    return c.json(tariffView(t), r.created ? 201 : 200);
  });
  admin.get('/tariffs', async (c) =>
    c.json({ items: (await deps.tariffs.list()).map(tariffView) }),
  );
  admin.post('/plans', async (c) => {
    const r = await deps.plans.publish(await jsonBody(c));
    return c.json(planView(r.plan), r.created ? 201 : 200);
  });
  admin.get('/plans', async (c) => c.json({ items: (await deps.plans.list()).map(planView) }));
  admin.post('/subscriptions', async (c) => {
    const r = await deps.plans.subscribe(await bodyFor(c, 'tenant_id'));
    return c.json(r.subscription, r.created ? 201 : 200);
  });
  admin.get('/subscriptions', async (c) => {
    const tenant = query(c, SettlementListQuery).tenant_id;
    requireTenant(c.get('principal'), tenant);
    return c.json({ items: await deps.plans.subscriptions(tenant) });
  });
  admin.post('/keys/rotate', async (c) => {
    const key = await deps.keys.rotate();
    return c.json({ key_id: key.keyId, jwks: await deps.keys.jwks() }, 201);
  });
  admin.post('/revocations/keys', async (c) => c.json(await deps.revocations.revokeKey(await jsonBody(c)), 201));
  admin.post('/revocations/attestations', async (c) => c.json(await deps.revocations.revokeAttestation(await jsonBody(c)), 201));
  admin.post('/webhooks', async (c) => c.json(await deps.webhooks.create(await jsonBody(c)), 201));
  admin.get('/webhooks', async (c) => c.json({ items: await deps.webhooks.list() }));
  admin.delete('/webhooks/:id', async (c) => c.json(await deps.webhooks.disable(c.req.param('id') ?? '')));
  admin.get('/webhooks/:id/deliveries', async (c) => c.json({ items: await deps.webhooks.deliveries(c.req.param('id') ?? '', Number(c.req.query('limit') ?? 100) || 100) }));
  admin.post('/proofs/requeue', async (c) => c.json({ requeued: await deps.proofs.requeueFailed() }));
  return admin;
}

/** A published tariff version as its holders (read or admin scope) see it: the snapshot, both
 *  commitments, and the bn128-poseidon8-v2 salt (never in the log or in redacted bundles). */
export function tariffView(t: PublishedTariff): TariffView {
  return {
    tariff_snapshot: t.snapshot,
    tariff_digest: t.tariffDigest,
    tariff_commitment: t.tariffCommitment,
    v2: { salt: t.salt.toString(), tariff_digest: t.tariffDigestV2, tariff_commitment: t.tariffCommitmentV2 },
    published_at: t.createdAt.toISOString(),
  };
}
