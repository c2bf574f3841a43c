/**
 * Sessions and the edge as a routing target, end to end: real Node origins (`npm run origin`) on
 * 127.0.0.1 serving the llama-Q8_0 reference fixture, the worker as `npm start` runs it (wrangler
 * dev, local R2 and Durable Object SQLite) with the same fixture uploaded as edge models, and the
 * official `openai` client as the client. Routes:
 *
 * - `chat-model`: the origin. A session's SessionDO keeps the history and sends the whole
 *   conversation; we hold the origin's own count of prompt tokens and its greedy text to what
 *   the origin answers when sent the full conversation directly.
 * - `fallback-model`: a dead origin, then the edge (`edge-llama`): served at the edge.
 * - `edge-first`: the edge with a 48-token context (`edge-small`), then the origin: what fits is
 *   served at the edge, a longer request falls through to the origin.
 * - `victim-model`: a second origin that is killed mid-reply, then the edge: no fallback after
 *   the first token, an error event, and the partial reply stored as `interrupted`.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadModel } from "../scripts/cli/upload.ts";
import { freePort, startWorker, type WorkerProcess } from "../scripts/origin/spawn-worker.ts";
import { spawnOrigin, type OriginProcess } from "../scripts/origin/spawn.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const FIXTURE = join(ROOT, "tests/fixtures/reference/llama-Q8_0.gguf");
const run1 = (JSON.parse(readFileSync(join(ROOT, "tests/fixtures/reference/llama-Q8_0.json"), "utf8")) as { runs: { prompt: number[]; tokens_f64: number[] }[] }).runs[1]!;
const ORIGIN_KEY = "sk-origin-sessions";
const LOCAL_KEY = "sk-petrel-local";

let origin: OriginProcess;
let victim: OriginProcess;
let direct: OpenAI;
let worker: WorkerProcess;
let state: string;
let client: OpenAI;

const originTarget = (id: string, o: OriginProcess) => ({ kind: "origin", id, baseUrl: `${o.url}/v1`, model: "llama-Q8_0", dialect: "openai", apiKeySecret: "ORIGIN_NODE_KEY" });

beforeAll(async () => {
  // The js backends (origin and edge) keep float activations: greedy tokens are the float64 reference's.
  [origin, victim] = await Promise.all([0, 1].map(() => spawnOrigin(["--model", FIXTURE, "--backend", "js", "--api-key", ORIGIN_KEY])));
  direct = new OpenAI({ baseURL: `${origin!.url}/v1`, apiKey: ORIGIN_KEY, maxRetries: 0 });
  const dead = `http://127.0.0.1:${await freePort()}/v1`;
  const routes = {
    models: [
      { model: "chat-model", targets: [originTarget("node", origin!)] },
      { model: "fallback-model", targets: [{ ...originTarget("dead", origin!), baseUrl: dead }, { kind: "edge", id: "edge", model: "edge-llama" }] },
      { model: "edge-first", targets: [{ kind: "edge", id: "edge", model: "edge-small" }, originTarget("node", origin!)] },
      { model: "victim-model", targets: [originTarget("victim", victim!), { kind: "edge", id: "edge", model: "edge-llama" }] },
    ],
  };
  state = mkdtempSync(join(tmpdir(), "petrel-origin-sessions-"));
  const bytes = new Uint8Array(readFileSync(FIXTURE));
  await uploadModel(FIXTURE, bytes, { id: "edge-llama", persistTo: state });
  await uploadModel(FIXTURE, bytes, { id: "edge-small", persistTo: state, nCtx: 48 });
  // Moderation off: the fixture speaks gibberish, which the default classifier may flag (moderation of routed replies has its own tests).
  const MODERATION_POLICIES = JSON.stringify({ "*": { checks: { rules: false, classifier: false, judge: false, external: false } } });
  worker = await startWorker({ state, vars: { ORIGIN_ROUTES: JSON.stringify(routes), ORIGIN_NODE_KEY: ORIGIN_KEY, BACKEND: "js", MODERATION_POLICIES } });
  client = new OpenAI({ baseURL: `${worker.url}/v1`, apiKey: LOCAL_KEY, maxRetries: 0 });
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await Promise.all([origin?.stop(), victim?.stop()]);
  if (state) rmSync(state, { recursive: true, force: true });
});

const inSession = (id: string) => new OpenAI({ baseURL: `${worker.url}/v1`, apiKey: LOCAL_KEY, maxRetries: 0, defaultHeaders: { "X-Session-Id": id } });

interface StoredMessage {
  role: string;
  content: string | null;
  status: string;
  finish_reason?: string;
  model?: string;
}

async function history(id: string): Promise<{ status: number; messages: StoredMessage[] }> {
  const res = await fetch(`${worker.url}/v1/sessions/${id}`, { headers: { authorization: `Bearer ${LOCAL_KEY}` } });
  const body = (await res.json()) as { messages?: StoredMessage[] };
  return { status: res.status, messages: body.messages ?? [] };
}

/** A streamed chat reply read with the openai client: its text, finish reason, usage and route. */
async function streamChat(c: OpenAI, params: { model: string; messages: OpenAI.ChatCompletionMessageParam[]; max_tokens: number }) {
  const { data, response } = await c.chat.completions.create({ ...params, temperature: 0, stream: true, stream_options: { include_usage: true } }).withResponse();
  let text = "";
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined;
  for await (const chunk of data) {
    text += chunk.choices[0]?.delta.content ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  return { text, finish, usage, route: response.headers.get("x-petrel-route") };
}

describe("a session routed to an origin", () => {
  const first = "Remember this word: albatross.";
  const second = "Which word did I ask you to remember?";

  it("sends the origin the whole conversation when the client sends only the new message", async () => {
    const s = inSession("albatross");
    const one = await s.chat.completions.create({ model: "chat-model", messages: [{ role: "user", content: first }], max_tokens: 8, temperature: 0 }).withResponse();
    expect(one.response.headers.get("x-petrel-route")).toBe("origin:node");
    expect(one.response.headers.get("x-session-id")).toBe("albatross");
    const reply1 = one.data.choices[0]!.message.content!;

    // Turn 2, streamed: only the new user message.
    const two = await streamChat(s, { model: "chat-model", messages: [{ role: "user", content: second }], max_tokens: 8 });
    expect(two.route).toBe("origin:node");

    // What the origin answers when sent the whole conversation itself: same prompt tokens, same greedy text.
    const whole: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: first }, { role: "assistant", content: reply1 }, { role: "user", content: second }];
    const straight = await direct.chat.completions.create({ model: "llama-Q8_0", messages: whole, max_tokens: 8, temperature: 0 });
    expect(two.usage!.prompt_tokens).toBe(straight.usage!.prompt_tokens);
    expect(two.usage!.prompt_tokens).toBeGreaterThan(one.data.usage!.prompt_tokens);
    expect(two.text).toBe(straight.choices[0]!.message.content);
    expect(two.finish).toBe(straight.choices[0]!.finish_reason);
  });

  it("keeps the history in the SessionDO: GET shows both turns, DELETE forgets them", async () => {
    const { status, messages } = await history("albatross");
    expect(status).toBe(200);
    expect(messages.map((m) => [m.role, m.status])).toEqual([["user", "complete"], ["assistant", "complete"], ["user", "complete"], ["assistant", "complete"]]);
    expect(messages[0]!.content).toBe(first);
    expect(messages[2]!.content).toBe(second);
    expect(messages[1]!).toMatchObject({ model: "chat-model", finish_reason: "length" });
    expect(messages[3]!.content!.length).toBeGreaterThan(0);

    const del = await fetch(`${worker.url}/v1/sessions/albatross`, { method: "DELETE", headers: { authorization: `Bearer ${LOCAL_KEY}` } });
    expect(await del.json()).toMatchObject({ object: "session.deleted", deleted: true });
    expect((await history("albatross")).status).toBe(404);
  });

  it("treats a resent whole conversation as the history, not as new messages", async () => {
    const s = inSession("resend");
    const one = await s.chat.completions.create({ model: "chat-model", messages: [{ role: "user", content: first }], max_tokens: 6, temperature: 0 });
    const reply1 = one.choices[0]!.message.content!;
    const whole: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: first }, { role: "assistant", content: reply1 }, { role: "user", content: second }];
    const two = await s.chat.completions.create({ model: "chat-model", messages: whole, max_tokens: 6, temperature: 0 });
    const straight = await direct.chat.completions.create({ model: "llama-Q8_0", messages: whole, max_tokens: 6, temperature: 0 });
    expect(two.usage!.prompt_tokens).toBe(straight.usage!.prompt_tokens);
    expect((await history("resend")).messages.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
  });
});

describe("the edge as a routing target", () => {
  it("serves a model whose origin is down, with llama.cpp's reference tokens, and opens the origin's circuit", async () => {
    const routes: (string | null)[] = [];
    for (let i = 0; i < 4; i++) {
      const { data, response } = await client.completions
        .create({
          model: "fallback-model",
          prompt: run1.prompt,
          max_tokens: 8,
          temperature: 0,
          // @ts-expect-error Petrel/vLLM extensions
          ignore_eos: true,
          return_token_ids: true,
        })
        .withResponse();
      routes.push(response.headers.get("x-petrel-route"));
      expect((data as unknown as { choices: { token_ids: number[] }[] }).choices[0]!.token_ids).toEqual(run1.tokens_f64.slice(0, 8));
    }
    expect(routes.slice(0, 3)).toEqual(Array(3).fill("edge:edge; tried=dead:unreachable"));
    // Three failures open the breaker: the dead origin is no longer even tried.
    expect(routes[3]).toBe("edge:edge; tried=dead:circuit_open");
  });

  it("keeps a session's history when the edge serves it, and sends the edge the whole conversation", async () => {
    const s = inSession("edge-served");
    const one = await streamChat(s, { model: "fallback-model", messages: [{ role: "user", content: "Hello edge." }], max_tokens: 6 });
    expect(one.route).toMatch(/^edge:edge; tried=dead:/);
    const two = await s.chat.completions.create({ model: "fallback-model", messages: [{ role: "user", content: "And again." }], max_tokens: 6, temperature: 0 });
    const whole: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Hello edge." }, { role: "assistant", content: one.text }, { role: "user", content: "And again." }];
    const straight = await direct.chat.completions.create({ model: "llama-Q8_0", messages: whole, max_tokens: 6, temperature: 0 });
    expect(two.usage!.prompt_tokens).toBe(straight.usage!.prompt_tokens);
    // Same greedy text; the edge keeps the first piece's leading space, the Node origin drops it.
    expect(two.choices[0]!.message.content!.trimStart()).toBe(straight.choices[0]!.message.content!.trimStart());
    const { messages } = await history("edge-served");
    expect(messages.map((m) => [m.role, m.content])).toEqual([...whole.map((m) => [m.role, m.content]), ["assistant", two.choices[0]!.message.content]]);
  });

  it("edge first: what fits is served at the edge, a longer request falls through to the origin", async () => {
    const short = await client.completions.create({ model: "edge-first", prompt: run1.prompt.slice(0, 8), max_tokens: 4, temperature: 0 }).withResponse();
    expect(short.response.headers.get("x-petrel-route")).toBe("edge:edge");

    // 40 prompt tokens + 16 do not fit the edge model's 48-token context.
    const { data, response } = await client.completions
      .create({ model: "edge-first", prompt: run1.prompt, max_tokens: 16, temperature: 0, stream: false })
      .withResponse();
    expect(response.headers.get("x-petrel-route")).toBe("origin:node; tried=edge:unsupported");
    expect(data.usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 16 });
  });

  it("never falls back after the first token: a killed origin ends the reply with an error, stored as interrupted", async () => {
    const s = inSession("cut-short");
    // ignore_eos (vLLM's extension) keeps the origin generating until it is killed.
    const params = { model: "victim-model", messages: [{ role: "user" as const, content: "Tell me a very long story." }], max_tokens: 400, temperature: 0, stream: true as const, ignore_eos: true };
    const pending = s.chat.completions.create(params);
    // The stored reply grows as it is sent: kill the origin once it has begun.
    for (;;) {
      const { messages } = await history("cut-short");
      if (messages[1]?.status === "streaming" && messages[1].content!.length > 0) break;
      if (messages[1] && messages[1].status !== "streaming") throw new Error(`the reply ended before the origin was killed: ${messages[1].status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await victim.kill();
    const stream = await pending;
    let text = "";
    const err = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as Error).message).toMatch(/Origin 'victim' dropped the connection mid-stream/);
    expect(text.length).toBeGreaterThan(0);

    const { messages } = await history("cut-short");
    expect(messages.map((m) => [m.role, m.status])).toEqual([["user", "complete"], ["assistant", "interrupted"]]);
    expect(messages[1]!.content).toBe(text);
  });
});
