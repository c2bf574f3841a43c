/**
 * End to end through an origin: a real Node origin (`npm run origin`, scripts/origin/spawn.ts) on
 * 127.0.0.1 serving the llama-Q8_0 reference fixture, and the worker started the way `npm start`
 * starts it (scripts/start.ts → wrangler dev) with ORIGIN_ROUTES routing `big-model` to that
 * origin (passed as `--var`, its key as a named secret). The official `openai` client drives it.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI, { type APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnOrigin, type OriginProcess } from "../scripts/origin/spawn.ts";
import { startWorker, type WorkerProcess } from "../scripts/origin/spawn-worker.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURE = join(ROOT, "tests/fixtures/reference/llama-Q8_0.gguf");
const run1 = (JSON.parse(readFileSync(join(ROOT, "tests/fixtures/reference/llama-Q8_0.json"), "utf8")) as { runs: { prompt: number[]; tokens_f64: number[] }[] }).runs[1]!;
const ORIGIN_KEY = "sk-origin-e2e";
const MODEL = "big-model";

let origin: OriginProcess;
let direct: OpenAI;
let worker: WorkerProcess;
let state: string;
let base: string;
let client: OpenAI;

beforeAll(async () => {
  // The js backend keeps float activations: its greedy tokens are the float64 reference's.
  origin = await spawnOrigin(["--model", FIXTURE, "--backend", "js", "--api-key", ORIGIN_KEY]);
  direct = new OpenAI({ baseURL: `${origin.url}/v1`, apiKey: ORIGIN_KEY, maxRetries: 0 });
  const routes = {
    models: [{ model: MODEL, targets: [{ kind: "origin", id: "node", baseUrl: `${origin.url}/v1`, model: "llama-Q8_0", dialect: "openai", apiKeySecret: "ORIGIN_NODE_KEY" }] }],
  };

  state = mkdtempSync(join(tmpdir(), "petrel-origin-e2e-"));
  worker = await startWorker({ state, vars: { ORIGIN_ROUTES: JSON.stringify(routes), ORIGIN_NODE_KEY: ORIGIN_KEY } });
  base = worker.url;
  client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "sk-petrel-local", maxRetries: 0 });
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await origin?.stop();
  if (state) rmSync(state, { recursive: true, force: true });
});

describe("the worker routing a model to a Node origin", () => {
  it("lists the routed model", async () => {
    const ids = (await client.models.list()).data.map((m) => m.id);
    expect(ids).toContain(MODEL);
    expect((await client.models.retrieve(MODEL)).id).toBe(MODEL);
  });

  it("chat: non-stream and stream pass through with the same text, x-petrel-route says origin", async () => {
    const params = { model: MODEL, messages: [{ role: "user" as const, content: "Hello from the edge!" }], max_tokens: 12, temperature: 0 };
    const plain = await client.chat.completions.create(params).withResponse();
    expect(plain.response.headers.get("x-petrel-route")).toBe("origin:node");
    expect(plain.data.object).toBe("chat.completion");
    expect(plain.data.model).toBe(MODEL);
    const text = plain.data.choices[0]!.message.content!;
    expect(text.length).toBeGreaterThan(0);
    const straight = await direct.chat.completions.create({ ...params, model: "llama-Q8_0" });
    expect(text).toBe(straight.choices[0]!.message.content);
    expect(plain.data.usage).toMatchObject({ prompt_tokens: straight.usage!.prompt_tokens, completion_tokens: straight.usage!.completion_tokens });

    const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } }).withResponse();
    expect(stream.response.headers.get("x-petrel-route")).toBe("origin:node");
    let streamed = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream.data) {
      streamed += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(streamed).toBe(text);
    expect(finish).toBe(plain.data.choices[0]!.finish_reason);
    expect(usage).toMatchObject({ prompt_tokens: plain.data.usage!.prompt_tokens, completion_tokens: plain.data.usage!.completion_tokens });
  });

  it("/v1/completions with a token-id prompt returns the reference greedy tokens through the origin", async () => {
    const res = (await client.completions.create({
      model: MODEL,
      prompt: run1.prompt,
      max_tokens: 32,
      temperature: 0,
      // @ts-expect-error Petrel/vLLM extensions
      ignore_eos: true,
      return_token_ids: true,
    })) as unknown as OpenAI.Completions.Completion & { choices: { token_ids: number[] }[] };
    expect(res.usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 32 });
    expect(res.choices[0]!.token_ids).toEqual(run1.tokens_f64);
  });

  it("charges routed usage to the tenant's ledger", async () => {
    const res = await fetch(`${base}/v1/usage`, { headers: { authorization: "Bearer sk-petrel-local" } });
    const { data } = (await res.json()) as { data: { model: string; requests: number; prompt_tokens: number; completion_tokens: number }[] };
    const row = data.find((r) => r.model === MODEL);
    expect(row).toBeDefined();
    expect(row!.requests).toBeGreaterThanOrEqual(3);
    expect(row!.completion_tokens).toBeGreaterThanOrEqual(12 + 12 + 32);
  });

  it("origin killed → the next request gets a clear OpenAI 502/503 error", async () => {
    await origin.kill();
    const err = await client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }], max_tokens: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const status = (err as APIError).status!;
    expect([502, 503]).toContain(status);
    expect((err as APIError).type).toBe("upstream_error");
    expect((err as APIError).message).toMatch(/node/);
    expect((err as APIError).headers?.get("x-petrel-route")).toMatch(/^origin:node; tried=node:/);
  });
});
