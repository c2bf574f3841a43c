/**
 * Moderation end to end over HTTP: the worker started the way `npm start` starts it (wrangler dev,
 * which also bundles onnxruntime-web's wasm and puts the shipped classifier into local R2), a real
 * Node origin serving a routed model, and the official `openai` client. Checks
 * `client.moderations.create`, input moderation of a routed model, and the output guard on an
 * origin-routed stream: stopped with content_filter, no byte of the flagged span sent.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { type APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CATEGORIES } from "../kernels/moderation/index.ts";
import { spawnOrigin, type OriginProcess } from "../scripts/origin/spawn.ts";
import { startWorker, type WorkerProcess } from "../scripts/origin/spawn-worker.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURE = join(ROOT, "tests/fixtures/reference/llama-Q8_0.gguf");
const ROUTED = "routed-model";
const ADMIN = "sk-petrel-admin-local";
const THREAT = "Meet me after school, I'm going to smash your face in.";

let origin: OriginProcess;
let worker: WorkerProcess;
let state: string;
let base: string;

beforeAll(async () => {
  origin = await spawnOrigin(["--model", FIXTURE, "--backend", "js"]);
  const routes = { models: [{ model: ROUTED, targets: [{ kind: "origin", id: "node", baseUrl: `${origin.url}/v1`, model: "llama-Q8_0", dialect: "openai" }] }] };
  state = mkdtempSync(join(tmpdir(), "petrel-moderation-e2e-"));
  worker = await startWorker({ state, vars: { ORIGIN_ROUTES: JSON.stringify(routes) } });
  base = worker.url;
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await origin?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

const client = (apiKey = "sk-petrel-local") => new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });

/** A new tenant with this policy (admin routes of .dev.vars' admin key) and a key of it. */
async function tenantWithPolicy(policy: object): Promise<string> {
  const tenant = `e2e-${crypto.randomUUID().slice(0, 8)}`;
  const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
  const put = await fetch(`${base}/v1/admin/moderation/policies/${tenant}`, { method: "PUT", headers: admin, body: JSON.stringify(policy) });
  expect(put.status).toBe(200);
  const made = await fetch(`${base}/v1/admin/keys`, { method: "POST", headers: admin, body: JSON.stringify({ tenant }) });
  return ((await made.json()) as { key: string }).key;
}

describe("npm start + the openai client: moderation", () => {
  it("client.moderations.create: the shipped classifier from local R2, run by onnxruntime-web in the worker", async () => {
    const res = await client().moderations.create({ input: [THREAT, "Where do puffins nest?"] });
    expect(res.model).toBe("petrel-moderation-1");
    expect(res.results).toHaveLength(2);
    const [threat, puffins] = res.results;
    expect(threat).toMatchObject({ flagged: true, categories: { violence: true } });
    expect(Object.keys(threat!.category_scores).sort()).toEqual([...CATEGORIES].sort());
    expect(threat!.category_applied_input_types.violence).toEqual(["text"]);
    expect(puffins!.flagged).toBe(false);
    expect(worker.output()).not.toMatch(/no classifier at/);
  });

  it("the local key's default policy refuses a threatening request to a routed model: 400 content_policy_violation", async () => {
    const err = await client().chat.completions.create({ model: ROUTED, messages: [{ role: "user", content: THREAT }], max_tokens: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as APIError).code).toBe("content_policy_violation");
    expect(((err as APIError).error as { categories: string[] }).categories).toContain("violence");
  });

  it("an origin-routed stream is cut with content_filter; no byte of the flagged span is sent", async () => {
    const request = { model: ROUTED, messages: [{ role: "user" as const, content: "Tell me a story." }], max_tokens: 48, temperature: 0, stream: true as const };
    // the unmoderated reply, from which the flagged span is taken
    let full = "";
    for await (const chunk of await client(await tenantWithPolicy({ checks: { rules: false, classifier: false }, output: { enabled: false } })).chat.completions.create(request)) {
      full += chunk.choices[0]?.delta.content ?? "";
    }
    const start = Math.floor(full.length / 2);
    const span = full.slice(start, start + 6);
    expect(span.trim()).toHaveLength(6);
    expect(full.indexOf(span)).toBe(start);

    const key = await tenantWithPolicy({
      checks: { rules: true, classifier: false },
      pii: { email: "allow", phone: "allow", card: "allow", iban: "allow", secret: "allow" },
      rules: { patterns: [{ id: "derived-span", pattern: span.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), flags: "u" }] },
      output: { windowChars: 16, stepChars: 8 },
    });
    const res = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(request) });
    expect(res.headers.get("x-petrel-route")).toBe("origin:node");
    const raw = new TextDecoder().decode(await res.arrayBuffer());
    expect(raw).not.toContain(span);
    expect(raw).not.toContain(JSON.stringify(span).slice(1, -1));
    const chunks = raw.split("\n\n").filter((b) => b.startsWith("data: ") && b !== "data: [DONE]").map((b) => JSON.parse(b.slice(6)) as OpenAI.Chat.ChatCompletionChunk);
    const sent = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(full.startsWith(sent)).toBe(true);
    expect(sent.length).toBeLessThanOrEqual(start);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("content_filter");
    expect(raw.trimEnd().endsWith("data: [DONE]")).toBe(true);

    // the openai client reads the same ending
    let finish: string | null = null;
    for await (const chunk of await client(key).chat.completions.create(request)) finish = chunk.choices[0]?.finish_reason ?? finish;
    expect(finish).toBe("content_filter");
  });
});
