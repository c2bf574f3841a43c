/**
 * The Hono app: OpenAI-compatible routes, auth, validation, errors, request ids, CORS, rate
 * limits, and the hand-off of each generation to the caller's SessionDO.
 */
import { zValidator } from "@hono/zod-validator";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import type { z } from "zod";
import type { Admission } from "../durable-objects/account.ts";
import type { RoutedTurnInput, TurnInput } from "../durable-objects/protocol.ts";
import { authenticate, isAdmin, isKeyRecord, newApiKey, sha256Hex, type KeyRecord, type Principal } from "./auth.ts";
import { numberVar, type Env } from "./env.ts";
import { ApiError, badRequest, forbidden, isOpenAIErrorBody, modelNotFound, notFound, payloadTooLarge, rateLimited, serverError } from "./errors.ts";
import { isManifest, modelObject, readManifest, type ModelManifest } from "./manifest.ts";
import { isolateHealth, metered, OriginRouter, replyResponse, routeHeader, routeTableOf, type EdgeHandler, type RouteTable } from "./routing/index.ts";
import { edgeHandler } from "../durable-objects/origin-edge.ts";
import { routedUsage } from "../durable-objects/origin-usage.ts";
import { chatRequestSchema, completionRequestSchema, createKeySchema, describeIssue, sessionIdSchema, type ChatRequest, type CompletionRequest } from "./schemas.ts";
import { GuardedOutput, guardRouteEvents, moderateGeneration, moderationContext, registerModerationRoutes } from "./moderation/index.ts";

type Vars = { requestId: string; principal: Principal };
type AppEnv = { Bindings: Env; Variables: Vars };
type Ctx = Context<AppEnv>;

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export function log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown>): void {
  const line = JSON.stringify({ level, component: "worker", msg, ...fields });
  if (level === "error") console.error(line);
  else console.log(line);
}

/** zod failures as OpenAI 400s naming the first bad field. */
function validationHook(result: { success: boolean; error?: { issues: z.core.$ZodIssue[] } }) {
  if (!result.success) {
    const issue = result.error!.issues[0]!;
    const { message, param } = describeIssue(issue);
    throw badRequest(message, param, issue.code === "invalid_type" ? "invalid_type" : "invalid_value");
  }
}

function errorResponse(err: unknown, requestId: string): Response {
  if (err instanceof ApiError) return err.toResponse();
  if (err instanceof HTTPException) {
    const status = err.status;
    if (status === 413) return new ApiError(413, "Request body too large.", "invalid_request_error", "request_too_large").toResponse();
    const message = status === 400 && /json/i.test(err.message) ? "We could not parse the JSON body of your request." : err.message || "Bad request";
    return new ApiError(status, message, status >= 500 ? "server_error" : "invalid_request_error", status === 400 ? "invalid_json" : null).toResponse();
  }
  log("error", "unhandled error", { request_id: requestId, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  return serverError(`The server had an error while processing your request (request id ${requestId}).`).toResponse();
}

export function createApp(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  // Request id first, so that every later response (errors included) carries it.
  app.use("*", async (c, next) => {
    const given = c.req.header("x-request-id");
    const requestId = given && REQUEST_ID_RE.test(given) ? given : `req_${crypto.randomUUID().replaceAll("-", "")}`;
    c.set("requestId", requestId);
    const started = Date.now();
    await next();
    c.res.headers.set("x-request-id", requestId);
    log(c.res.status >= 500 ? "error" : "info", "request", {
      request_id: requestId,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Date.now() - started,
      tenant: c.get("principal")?.tenant,
    });
  });

  app.use("*", async (c, next) => {
    const origins = (c.env.CORS_ORIGINS ?? "*").split(",").map((s) => s.trim()).filter(Boolean);
    return cors({
      origin: origins.includes("*") ? "*" : origins,
      allowHeaders: ["Authorization", "Content-Type", "X-Session-Id", "X-Request-Id", "OpenAI-Organization", "OpenAI-Project", "X-Stainless-*"],
      allowMethods: ["GET", "POST", "DELETE", "OPTIONS"],
      exposeHeaders: ["x-request-id", "retry-after", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-session-id", "x-petrel-route"],
      maxAge: 600,
    })(c, next);
  });

  app.onError((err, c) => errorResponse(err, c.get("requestId") ?? "unknown"));
  app.notFound((c) => notFound(`Unknown route: ${c.req.method} ${c.req.path}`, null, "unknown_url").toResponse());

  app.get("/health", (c) => c.json({ status: "ok" }));

  app.use("/v1/*", async (c, next) => {
    if (c.req.path.startsWith("/v1/admin/")) {
      if (!(await isAdmin(c.env, c.req.header("authorization")))) throw forbidden("This route needs an admin key.");
      return next();
    }
    const principal = await authenticate(c.env, c.req.header("authorization"), {
      rpm: numberVar(c.env.DEFAULT_RPM, 600),
      tpm: numberVar(c.env.DEFAULT_TPM, 1_000_000),
    });
    c.set("principal", principal);
    return next();
  });

  app.use("/v1/*", async (c, next) => {
    if (c.req.method !== "POST") return next();
    const maxSize = numberVar(c.env.MAX_BODY_BYTES, 1 << 20);
    return bodyLimit({ maxSize, onError: () => { throw payloadTooLarge(maxSize); } })(c, next);
  });

  // ---- models ----
  app.get("/v1/models", async (c) => {
    const manifests = await listManifests(c.env.MODELS);
    const data: object[] = manifests.map(modelObject);
    const served = new Set(manifests.map((m) => m.id));
    for (const id of routedModels(c.env)) if (!served.has(id)) data.push(routedModelObject(id));
    data.sort((a, b) => (a as { id: string }).id.localeCompare((b as { id: string }).id));
    return c.json({ object: "list", data });
  });

  app.get("/v1/models/:id{.+}", async (c) => {
    const id = c.req.param("id");
    const m = await readManifest(c.env.MODELS, id);
    if (!m && routerFor(c.env)?.has(id)) return c.json(routedModelObject(id));
    if (!m) throw modelNotFound(id);
    return c.json(modelObject(m));
  });

  // ---- generation ----
  app.post("/v1/chat/completions", zValidator("json", chatRequestSchema, validationHook), (c) => generation(c, "chat", c.req.valid("json")));
  app.post("/v1/completions", zValidator("json", completionRequestSchema, validationHook), (c) => generation(c, "completion", c.req.valid("json")));

  // ---- moderation: POST /v1/moderations, tenant policies (workers/moderation) ----
  registerModerationRoutes(app);

  // ---- sessions ----
  app.get("/v1/sessions/:id", (c) => sessionRequest(c, "GET"));
  app.delete("/v1/sessions/:id", (c) => sessionRequest(c, "DELETE"));

  // ---- usage ledger ----
  app.get("/v1/usage", async (c) => {
    const today = new Date().toISOString().slice(0, 10);
    const date = c.req.query("date");
    const start = c.req.query("start_date") ?? date ?? today;
    const end = c.req.query("end_date") ?? date ?? today;
    for (const [param, v] of [["start_date", start], ["end_date", end]] as const) {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) throw badRequest(`${param} must be a date YYYY-MM-DD`, param);
    }
    const principal = c.get("principal");
    const rows = await accountOf(c.env, principal.tenant).usage(start, end);
    return c.json({ object: "list", tenant: principal.tenant, start_date: start, end_date: end, data: rows });
  });

  // ---- admin: keys without a redeploy ----
  app.post("/v1/admin/keys", zValidator("json", createKeySchema, validationHook), async (c) => {
    const body = c.req.valid("json");
    const key = newApiKey();
    const hash = await sha256Hex(key);
    const record: KeyRecord = { id: hash.slice(0, 16), hash, tenant: body.tenant, created: Math.floor(Date.now() / 1000) };
    if (body.name !== undefined) record.name = body.name;
    if (body.rpm !== undefined) record.rpm = body.rpm;
    if (body.tpm !== undefined) record.tpm = body.tpm;
    await c.env.KEYS.put(`apikey:${hash}`, JSON.stringify(record));
    return c.json({ object: "api_key", ...record, key }, 201);
  });

  app.get("/v1/admin/keys", async (c) => {
    const list = await c.env.KEYS.list({ prefix: "apikey:" });
    const records = await Promise.all(list.keys.map((k) => c.env.KEYS.get<KeyRecord>(k.name, "json")));
    return c.json({ object: "list", data: records.filter((r): r is KeyRecord => isKeyRecord(r)).map((r) => ({ object: "api_key", ...r })) });
  });

  /** Revokes a key by its hash (or the 16-hex id of a key made here): works for configured keys too. */
  app.delete("/v1/admin/keys/:hash", async (c) => {
    let hash = c.req.param("hash").toLowerCase();
    if (/^[0-9a-f]{16}$/.test(hash)) {
      const list = await c.env.KEYS.list({ prefix: `apikey:${hash}` });
      const match = list.keys[0]?.name.slice("apikey:".length);
      if (!match) throw notFound(`No key with id ${hash}.`);
      hash = match;
    }
    if (!/^[0-9a-f]{64}$/.test(hash)) throw badRequest("give the key's sha256 hex digest or its 16-hex id", "hash");
    await c.env.KEYS.put(`revoked:${hash}`, String(Date.now()));
    await c.env.KEYS.delete(`apikey:${hash}`);
    return c.json({ object: "api_key.deleted", id: hash, deleted: true });
  });

  return app;
}

// ---------------------------------------------------------------------------------------------

async function listManifests(bucket: R2Bucket): Promise<ModelManifest[]> {
  const out: ModelManifest[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix: "manifest/", cursor });
    const entries = await Promise.all(page.objects.filter((o) => o.key.endsWith(".json")).map(async (o) => (await bucket.get(o.key))?.json()));
    for (const m of entries) if (isManifest(m)) out.push(m);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

const accountOf = (env: Env, tenant: string) => env.ACCOUNTS.get(env.ACCOUNTS.idFromName(tenant));

/** The Durable Object name of a tenant's session: derived from the tenant, never the raw client id. */
export function sessionName(tenant: string, session: string): string {
  return JSON.stringify(["session", tenant, session]);
}

function sessionIdOf(c: Ctx, fromBody: string | null | undefined): string | undefined {
  const header = c.req.header("x-session-id");
  const id = header ?? fromBody ?? undefined;
  if (id === undefined) return undefined;
  if (!sessionIdSchema.safeParse(id).success) throw badRequest("session ids are 1–128 characters of A-Z a-z 0-9 . _ : -", "session", "invalid_value");
  return id;
}

function rateLimitHeaders(a: Extract<Admission, { ok: true }>): Record<string, string> {
  return {
    "x-ratelimit-limit-requests": String(a.limitRequests),
    "x-ratelimit-remaining-requests": String(a.remainingRequests),
    "x-ratelimit-limit-tokens": String(a.limitTokens),
    "x-ratelimit-remaining-tokens": String(a.remainingTokens),
  };
}

async function generation(c: Ctx, kind: "chat" | "completion", body: ChatRequest | CompletionRequest): Promise<Response> {
  const principal = c.get("principal");
  const requestId = c.get("requestId");
  const session = sessionIdOf(c, body.session);
  const router = routerFor(c.env, edgeHandler(c.env, { tenant: principal.tenant, keyHash: principal.keyHash, requestId }));
  const routed = router?.has(body.model) === true;
  if (routed && session === undefined) return routedGeneration(c, router!, kind, body);
  // A routed model with a session goes to its SessionDO, which keeps the history and routes the turn (durable-objects/origin-turn.ts).
  const manifest = routed ? undefined : await readManifest(c.env.MODELS, body.model);
  if (!routed && !manifest) throw modelNotFound(body.model);

  const admission = await accountOf(c.env, principal.tenant).admit(principal.keyHash, { rpm: principal.rpm, tpm: principal.tpm });
  if (!admission.ok) throw rateLimited(admission.message, admission.kind, admission.retryAfter);
  // Input moderation before anything is generated; the SessionDO applies the rest of the policy.
  // (A routed session's chat gets the pinned system prompt in its SessionDO, like the edge's; a routed completion's token ids are checked nowhere.)
  const moderated = await moderateGeneration(kind, body, moderationContext(c), { routed: routed && kind === "completion" });
  body = moderated.body;

  const ns = c.env.SESSIONS;
  const stub = session === undefined ? ns.get(ns.newUniqueId()) : ns.get(ns.idFromName(sessionName(principal.tenant, session)));
  const common = { kind, requestId, tenant: principal.tenant, keyHash: principal.keyHash, body, ...(moderated.policy && { moderation: moderated.policy }) };
  const turn: TurnInput | RoutedTurnInput = manifest ? { ...common, session: session ?? null, manifest } : { ...common, session: session!, routed: true };
  const started = Date.now();
  const res = await stub.fetch("https://session/turn", {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": requestId },
    body: JSON.stringify(turn),
    signal: c.req.raw.signal,
  });
  c.req.raw.signal.addEventListener("abort", () => log("info", "client disconnected", { request_id: requestId }));
  const headers = new Headers(res.headers);
  for (const [k, v] of Object.entries(rateLimitHeaders(admission))) headers.set(k, v);
  if (session !== undefined) headers.set("x-session-id", session);
  // Worker time around the object's own (server-timing from the object): the hop's cost.
  const objectTiming = res.headers.get("server-timing");
  if (objectTiming && !headers.get("content-type")?.includes("event-stream")) {
    headers.set("server-timing", `${objectTiming}, worker;dur=${Date.now() - started}`);
  }
  return new Response(res.body, { status: res.status, headers });
}

// ---- origin routes (workers/routing) ---------------------------------------------------------

/** The routes of env.ORIGIN_ROUTES (undefined when unset or invalid), parsed once per config. */
function routesOf(env: Env): RouteTable | undefined {
  return routeTableOf(env.ORIGIN_ROUTES, env as unknown as Record<string, unknown>, (error) => log("error", "ORIGIN_ROUTES ignored", { error }));
}

/** A router over env.ORIGIN_ROUTES with the isolate's circuit breakers; `edge` serves its edge targets. */
export function routerFor(env: Env, edge?: EdgeHandler): OriginRouter | undefined {
  const routes = routesOf(env);
  return routes && new OriginRouter({ routes, health: isolateHealth, ...(edge && { edge }) });
}

/** The model ids ORIGIN_ROUTES routes. */
function routedModels(env: Env): string[] {
  return routesOf(env)?.models() ?? [];
}

function routedModelObject(id: string) {
  return { id, object: "model" as const, created: 0, owned_by: "petrel", petrel: { routed: true } };
}

/** A routed model without a session: its targets serve the reply; usage is charged to the tenant like the edge's. */
async function routedGeneration(c: Ctx, router: OriginRouter, kind: "chat" | "completion", body: ChatRequest | CompletionRequest): Promise<Response> {
  const principal = c.get("principal");
  const requestId = c.get("requestId");
  const admission = await accountOf(c.env, principal.tenant).admit(principal.keyHash, { rpm: principal.rpm, tpm: principal.tpm });
  if (!admission.ok) throw rateLimited(admission.message, admission.kind, admission.retryAfter);
  const moderated = await moderateGeneration(kind, body, moderationContext(c), { routed: true });
  body = moderated.body;
  const guard = await GuardedOutput.create(c.env, moderated.policy, { stream: body.stream === true, tenant: principal.tenant, requestId });
  const headers: Record<string, string> = rateLimitHeaders(admission);

  let result;
  try {
    result = await router.route(body.model, { kind, body: body as Record<string, unknown>, requestId }, c.req.raw.signal);
  } catch {
    log("info", "client disconnected", { request_id: requestId });
    return new Response(null, { status: 499 });
  }
  if (!result) throw modelNotFound(body.model);
  headers["x-petrel-route"] = routeHeader(result.route);
  if (!result.ok) {
    log("warn", "route failed", { request_id: requestId, model: body.model, route: headers["x-petrel-route"], status: result.status });
    return Response.json(result.error, { status: result.status, headers: { ...headers, ...result.headers } });
  }

  // Charge the tenant once the reply ends (or breaks): the upstream's usage, else what was seen.
  const events = metered(result.events, routedUsage(c.env, { tenant: principal.tenant, keyHash: principal.keyHash, requestId }, body.model, result.route.kind));
  const meta = { kind, id: `${kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`, model: body.model, created: Math.floor(Date.now() / 1000) } as const;
  return replyResponse(meta, guard ? guardRouteEvents(events, guard) : events, {
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    returnTokenIds: body.return_token_ids === true,
    headers,
  });
}

async function sessionRequest(c: Ctx, method: "GET" | "DELETE"): Promise<Response> {
  const principal = c.get("principal");
  const id = c.req.param("id")!;
  if (!sessionIdSchema.safeParse(id).success) throw notFound(`No session '${id}'.`, null, "session_not_found");
  const ns = c.env.SESSIONS;
  const stub = ns.get(ns.idFromName(sessionName(principal.tenant, id)));
  const res = await stub.fetch(`https://session/history?session=${encodeURIComponent(id)}`, { method, headers: { "x-request-id": c.get("requestId") } });
  const body: unknown = await res.json();
  if (!res.ok && isOpenAIErrorBody(body)) return Response.json(body, { status: res.status });
  return c.json(body as object, res.status as 200);
}
