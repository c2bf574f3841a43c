/**
 * workers/routing against the real Node origin (a child process on 127.0.0.1): pass-through of
 * stream and non-stream replies, llama.cpp's reference tokens through the route, an origin
 * killed mid-stream (→ error event, finish_reason null), a wrong upstream key (→ 502), and an
 * upstream 400 passed through without fallback. `serveRoutes` (scripts/origin/route-proxy.ts) is
 * a worker-shaped handler — the few lines the Hono worker needs — served over HTTP so the
 * official openai client reads what a real client would.
 */
import { readFileSync } from "node:fs";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveRoutes } from "../scripts/origin/route-proxy.ts";
import { spawnOrigin, type OriginProcess } from "../scripts/origin/spawn.ts";
import { collectReply, OriginRouter, parseRoutes, routeHeader, type RouteEvent, type RouteRequest } from "../workers/routing/index.ts";

const FIXTURE = "tests/fixtures/reference/llama-Q8_0.gguf";
const run1 = (JSON.parse(readFileSync(new URL("./fixtures/reference/llama-Q8_0.json", import.meta.url), "utf8")) as { runs: { prompt: number[]; tokens_f64: number[] }[] }).runs[1]!;
const KEY = "sk-upstream-secret";

let origin: OriginProcess;
let direct: OpenAI;

beforeAll(async () => {
  origin = await spawnOrigin(["--model", FIXTURE, "--api-key", KEY, "--max-running", "4"]);
  direct = new OpenAI({ baseURL: `${origin.url}/v1`, apiKey: KEY, maxRetries: 0 });
});
afterAll(async () => {
  await origin?.stop();
});

function routerFor(targets: unknown[], secrets: Record<string, string> = { NODE_KEY: KEY }) {
  return new OriginRouter({ routes: parseRoutes({ models: [{ model: "petrel-small", targets }] }, secrets) });
}
const nodeTarget = (url: string, extra: Record<string, unknown> = {}) => ({ kind: "origin", id: "node", baseUrl: `${url}/v1`, model: "llama-Q8_0", dialect: "openai", apiKeySecret: "NODE_KEY", ...extra });

describe("routing to the Node origin", () => {
  it("passes a completion through, stream and non-stream, with llama.cpp's reference tokens and usage", async () => {
    const router = routerFor([nodeTarget(origin.url)]);
    const req: RouteRequest = { kind: "completion", body: { model: "petrel-small", prompt: run1.prompt, max_tokens: 12, temperature: 0, ignore_eos: true, return_token_ids: true, session: "s1" } };
    const result = await router.route("petrel-small", req);
    expect(result?.ok).toBe(true);
    if (!result?.ok) return;
    expect(routeHeader(result.route)).toBe("origin:node");
    const reply = await collectReply(result.events);
    expect(reply.tokenIds).toEqual(run1.tokens_f64.slice(0, 12));
    expect(reply.finishReason).toBe("length");
    expect(reply.usage).toEqual({ prompt_tokens: 40, completion_tokens: 12, total_tokens: 52 });
    const straight = await direct.completions.create({ model: "x", prompt: run1.prompt, max_tokens: 12, temperature: 0, ignore_eos: true } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(reply.text).toBe(straight.choices[0]!.text);

    // Through a worker-shaped HTTP handler, read by the openai client: JSON and SSE.
    const worker = await serveRoutes(router);
    try {
      const client = new OpenAI({ baseURL: `${worker.url}/v1`, apiKey: "client-key", maxRetries: 0 });
      const chatParams = { model: "petrel-small", messages: [{ role: "user" as const, content: "Hi" }], max_tokens: 6, temperature: 0 };
      const viaRoute = await client.chat.completions.create(chatParams).withResponse();
      expect(viaRoute.response.headers.get("x-petrel-route")).toBe("origin:node");
      const straightChat = await direct.chat.completions.create({ ...chatParams, model: "llama-Q8_0" });
      expect(viaRoute.data.choices[0]!.message.content).toBe(straightChat.choices[0]!.message.content);
      expect(viaRoute.data.usage).toEqual(straightChat.usage);
      const stream = await client.chat.completions.create({ ...chatParams, stream: true, stream_options: { include_usage: true } });
      let text = "";
      let finish: string | null = null;
      let usage: unknown;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
        usage = chunk.usage ?? usage;
      }
      expect(text).toBe(straightChat.choices[0]!.message.content);
      expect(finish).toBe(straightChat.choices[0]!.finish_reason);
      expect(usage).toEqual(straightChat.usage);
    } finally {
      await worker.close();
    }
  });

  it("ends the reply with an error event (finish_reason null) when the origin is killed mid-stream", async () => {
    const victim = await spawnOrigin(["--model", FIXTURE]);
    const router = routerFor([{ kind: "origin", id: "victim", baseUrl: `${victim.url}/v1`, model: "m", dialect: "openai" }]);
    try {
      const result = await router.route("petrel-small", { kind: "completion", body: { model: "petrel-small", prompt: [1, 5], max_tokens: 300, temperature: 0, ignore_eos: true, return_token_ids: true } });
      expect(result?.ok).toBe(true);
      if (!result?.ok) return;
      const events: RouteEvent[] = [];
      for await (const ev of result.events) {
        events.push(ev);
        if (events.length === 3) await victim.kill();
      }
      const last = events.at(-1)!;
      expect(last.type).toBe("error");
      if (last.type !== "error") return;
      expect(last.status).toBe(502);
      expect(last.error.error.code).toBe("upstream_stream_broken");
      expect(last.error.error.message).toMatch(/victim/);
      expect(events.filter((e) => e.type === "delta").length).toBeGreaterThanOrEqual(3);
      expect(events.some((e) => e.type === "end")).toBe(false);
      expect(router.health.snapshot()["petrel-small/victim"]!.failures).toBe(1);
    } finally {
      await victim.kill();
    }
  });

  it("shows a client the broken stream as an SSE error after the chunks it already got", async () => {
    const victim = await spawnOrigin(["--model", FIXTURE]);
    const router = routerFor([{ kind: "origin", id: "victim", baseUrl: `${victim.url}/v1`, model: "m", dialect: "openai" }]);
    const worker = await serveRoutes(router);
    try {
      const client = new OpenAI({ baseURL: `${worker.url}/v1`, apiKey: "k", maxRetries: 0 });
      const stream = await client.completions.create({ model: "petrel-small", prompt: [1, 6], max_tokens: 300, temperature: 0, ignore_eos: true, stream: true } as OpenAI.CompletionCreateParamsStreaming);
      const finishes: (string | null)[] = [];
      let caught: unknown;
      try {
        for await (const chunk of stream) {
          finishes.push(chunk.choices[0]?.finish_reason ?? null);
          if (finishes.length === 3) await victim.kill();
        }
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(OpenAI.APIError);
      expect((caught as Error).message).toMatch(/victim/);
      expect(finishes.length).toBeGreaterThanOrEqual(3);
      expect(finishes.every((f) => f === null)).toBe(true);
    } finally {
      await worker.close();
      await victim.kill();
    }
  });

  it("turns a wrong upstream key into a clear 502, and opens the circuit after repeated failures", async () => {
    const router = new OriginRouter({
      routes: parseRoutes({ models: [{ model: "petrel-small", targets: [nodeTarget(origin.url, { apiKeySecret: undefined, apiKey: "sk-wrong" })] }] }),
      breaker: { failureThreshold: 2, cooldownMs: 60_000 },
    });
    const req: RouteRequest = { kind: "chat", body: { model: "petrel-small", messages: [{ role: "user", content: "hi" }], max_tokens: 2 } };
    const r = await router.route("petrel-small", req);
    expect(r?.ok).toBe(false);
    if (r?.ok !== false) return;
    expect(r.status).toBe(502);
    expect(r.error.error.code).toBe("upstream_auth_failed");
    expect(r.error.error.message).toMatch(/Origin 'node' rejected Petrel's API key \(HTTP 401: Incorrect API key provided\.\)/);
    expect(routeHeader(r.route)).toBe("origin:node; tried=node:auth");
    await router.route("petrel-small", req);
    const third = await router.route("petrel-small", req);
    expect(third?.ok === false && third.status).toBe(503);
    expect(third?.ok === false && third.headers["retry-after"]).toBeTruthy();
    expect(router.health.snapshot()["petrel-small/node"]!.state).toBe("open");
  });

  it("passes an upstream 400 through without trying the next target", async () => {
    const router = routerFor([nodeTarget(origin.url), { ...nodeTarget(origin.url), id: "second" }]);
    const r = await router.route("petrel-small", { kind: "completion", body: { model: "petrel-small", prompt: "x", temperature: 7 } });
    expect(r?.ok).toBe(false);
    if (r?.ok !== false) return;
    expect(r.status).toBe(400);
    expect(r.error.error.code).toBe("upstream_rejected_request");
    expect(r.error.error.message).toMatch(/temperature/);
    expect(r.route.attempts.map((a) => a.target)).toEqual(["node"]);
    expect(router.health.snapshot()["petrel-small/node"]!.consecutiveFailures).toBe(0);
  });
});
