/**
 * The moderation routes: POST /v1/moderations (OpenAI's schema; every enabled check of the
 * tenant's policy runs on every input) and the admin routes that set a tenant's policy at run
 * time (KV, no redeploy): PUT/GET/DELETE /v1/admin/moderation/policies/{tenant}.
 */
import type { Context, Hono } from "hono";
import { handleModerationsRequest, ModerationsRequestSchema, parsePolicy, PolicyError } from "../../kernels/moderation/index.ts";
import type { Principal } from "../auth.ts";
import type { Env } from "../env.ts";
import { badRequest, rateLimited } from "../errors.ts";
import { describeIssue } from "../schemas.ts";
import { isInProcessRequest, moderationEngines, type EngineContext } from "./engines.ts";
import { logModeration } from "./log.ts";
import { policyKvKey } from "./keys.ts";
import { tenantPolicy } from "./policy.ts";

type ModerationApp = Hono<{ Bindings: Env; Variables: { requestId: string; principal: Principal } }>;
type Ctx = Context<{ Bindings: Env; Variables: { requestId: string; principal: Principal } }>;

const TENANT_RE = /^[A-Za-z0-9._:-]{1,64}$/;

/** The app the routes were registered on: requests to this worker's own origin are served by it in-process. */
let registered: ModerationApp | undefined;

/** What the moderation engines need from a worker request (its tenant, and this worker for in-process calls). */
export function moderationContext(c: Ctx): EngineContext {
  const app = registered!;
  const principal = c.get("principal");
  return {
    env: c.env,
    tenant: principal.tenant,
    keyHash: principal.keyHash,
    requestId: c.get("requestId"),
    self: { origin: new URL(c.req.url).origin, fetch: async (request) => app.fetch(request, c.env, c.executionCtx) },
    nested: isInProcessRequest(c.req.raw),
  };
}

async function jsonBody(c: Ctx): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw badRequest("We could not parse the JSON body of your request.", null, "invalid_json");
  }
}

function tenantParam(c: Ctx): string {
  const tenant = c.req.param("tenant") ?? "";
  if (!TENANT_RE.test(tenant)) throw badRequest("tenant: 1–64 characters of A-Z a-z 0-9 . _ : -", "tenant", "invalid_value");
  return tenant;
}

export function registerModerationRoutes(app: ModerationApp): void {
  registered = app;
  app.post("/v1/moderations", async (c) => {
    const parsed = ModerationsRequestSchema.safeParse(await jsonBody(c));
    if (!parsed.success) {
      const { message, param } = describeIssue(parsed.error.issues[0]!);
      throw badRequest(message, param, "invalid_value");
    }
    const principal = c.get("principal");
    const admission = await c.env.ACCOUNTS.get(c.env.ACCOUNTS.idFromName(principal.tenant)).admit(principal.keyHash, { rpm: principal.rpm, tpm: principal.tpm });
    if (!admission.ok) throw rateLimited(admission.message, admission.kind, admission.retryAfter);
    const ctx = moderationContext(c);
    const policy = await tenantPolicy(c.env, principal.tenant);
    const started = Date.now();
    const { response, results } = await handleModerationsRequest(parsed.data, policy, await moderationEngines(policy, ctx));
    const ms = Date.now() - started;
    for (const r of results) logModeration(policy, r.decisions, { direction: "moderations", tenant: ctx.tenant, requestId: ctx.requestId }, { action: r.action, checks: r.checks, ms });
    return c.json(response);
  });

  app.put("/v1/admin/moderation/policies/:tenant", async (c) => {
    const tenant = tenantParam(c);
    let policy;
    try {
      policy = parsePolicy(await jsonBody(c));
    } catch (e) {
      if (e instanceof PolicyError) throw badRequest(e.message, e.issues[0]?.path.join(".") || null, "invalid_policy");
      throw e;
    }
    await c.env.KEYS.put(policyKvKey(tenant), JSON.stringify(policy));
    return c.json({ object: "moderation.policy", tenant, source: "kv", policy });
  });

  app.get("/v1/admin/moderation/policies/:tenant", async (c) => {
    const tenant = tenantParam(c);
    const stored = (await c.env.KEYS.get(policyKvKey(tenant))) !== null;
    return c.json({ object: "moderation.policy", tenant, source: stored ? "kv" : "config", policy: await tenantPolicy(c.env, tenant) });
  });

  app.delete("/v1/admin/moderation/policies/:tenant", async (c) => {
    const tenant = tenantParam(c);
    await c.env.KEYS.delete(policyKvKey(tenant));
    return c.json({ object: "moderation.policy.deleted", tenant, deleted: true });
  });
}
