/**
 * The routing policy and the Ollama dialect, against tests/fixtures/ollama/server.ts — a small
 * NDJSON server written from Ollama's documented API format (docs/api.md), not Ollama itself —
 * plus a dead port and a socket that accepts and never answers: native /api/chat and
 * /api/generate, circuit breaker (open after N failures, half-open probe, closing again), fallback
 * on an unreachable or slow origin (timeouts to first token and between tokens), in-stream errors,
 * 429s, target order by priority and weight, and the registry's validation.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectReply, OriginRouter, parseRoutes, routeHeader, type RouteEvent, type RouteRequest } from "../workers/routing/index.ts";
import { startOllamaFixture, type OllamaFixture } from "./fixtures/ollama/server.ts";

let ollama: OllamaFixture;
let blackHole: Server;
let blackHolePort: number;
const held: Socket[] = [];

/** A port nothing listens on (bound once, then released). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

beforeAll(async () => {
  ollama = await startOllamaFixture({ models: ["llama3.2:1b"] });
  blackHole = createServer((sock) => held.push(sock)); // accepts, never answers
  await new Promise<void>((r) => blackHole.listen(0, "127.0.0.1", r));
  blackHolePort = (blackHole.address() as { port: number }).port;
});
afterAll(async () => {
  await ollama?.close();
  for (const s of held) s.destroy();
  await new Promise<void>((r) => blackHole.close(() => r()));
});

const ollamaTarget = (id: string, url: string, extra: Record<string, unknown> = {}) => ({ kind: "origin", id, baseUrl: url, model: "llama3.2:1b", dialect: "ollama", ...extra });
const chat = (content: string, extra: Record<string, unknown> = {}): RouteRequest => ({ kind: "chat", body: { model: "m", messages: [{ role: "system", content: "sys" }, { role: "user", content }], ...extra } });
const router = (targets: unknown[], opts: Partial<ConstructorParameters<typeof OriginRouter>[0]> = {}) =>
  new OriginRouter({ routes: parseRoutes({ models: [{ model: "m", targets }] }), ...opts });

async function run(r: OriginRouter, req: RouteRequest) {
  const result = await r.route("m", req);
  if (!result) throw new Error("no route");
  if (!result.ok) return { result, reply: undefined };
  return { result, reply: await collectReply(result.events) };
}

describe("Ollama native dialect", () => {
  it("streams /api/chat NDJSON as deltas, with done_reason and token counts", async () => {
    const { result, reply } = await run(router([ollamaTarget("ollama", ollama.url)]), chat("hello there friend", { temperature: 0.2, top_k: 5, seed: 3, stop: "zzz" }));
    expect(result.ok).toBe(true);
    expect(reply).toMatchObject({ text: "You said: hello there friend", finishReason: "stop", usage: { prompt_tokens: 7, completion_tokens: 5, total_tokens: 12 } });
    const sent = ollama.requests.at(-1)!;
    expect(sent.path).toBe("/api/chat");
    expect(sent.body).toMatchObject({ model: "llama3.2:1b", stream: true, messages: [{ role: "system", content: "sys" }, { role: "user", content: "hello there friend" }], options: { temperature: 0.2, top_k: 5, seed: 3, stop: ["zzz"] } });
  });

  it("maps max_tokens to num_predict (done_reason length) and text completions to /api/generate raw", async () => {
    const r = router([ollamaTarget("ollama", ollama.url)]);
    const { reply } = await run(r, { kind: "completion", body: { model: "m", prompt: "one two three four", max_tokens: 3 } });
    expect(reply).toMatchObject({ text: "You said: one", finishReason: "length" }); // 3 words: "You", " said:", " one"
    expect(ollama.requests.at(-1)).toMatchObject({ path: "/api/generate", body: { prompt: "one two three four", raw: true, options: { num_predict: 3 } } });
  });

  it("cannot send token-id prompts natively: it falls through to the next target without blaming the first", async () => {
    const second = await startOllamaFixture({ models: ["llama3.2:1b"] });
    try {
      // The second target is also Ollama, so it cannot either: a clear 400, both tried.
      const r = router([ollamaTarget("a", ollama.url), ollamaTarget("b", second.url)]);
      const { result } = await run(r, { kind: "completion", body: { model: "m", prompt: [1, 2, 3] } });
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.status).toBe(400);
      expect(result.error.error.code).toBe("all_upstreams_failed");
      expect(result.route.attempts.map((a) => `${a.target}:${a.outcome}`)).toEqual(["a:unsupported", "b:unsupported"]);
      expect(r.health.snapshot()["m/a"]!.consecutiveFailures).toBe(0);
    } finally {
      await second.close();
    }
  });

  it("reports an unknown upstream model as a 502 naming it, and an in-stream error after output as an error event", async () => {
    const missing = await run(router([ollamaTarget("ollama", ollama.url, { model: "nope:7b" })]), chat("x"));
    expect(missing.result.ok === false && missing.result.status).toBe(502);
    expect(missing.result.ok === false && missing.result.error.error.message).toMatch(/does not serve model 'nope:7b'.*not found/);

    const flaky = await startOllamaFixture({ models: ["llama3.2:1b"], errorAfter: 2 });
    try {
      const { result, reply } = await run(router([ollamaTarget("flaky", flaky.url)]), chat("a b c d e"));
      expect(result.ok).toBe(true);
      expect(reply!.text).toBe("You said:");
      expect(reply!.error?.status).toBe(502);
      expect(reply!.error?.error.error.message).toMatch(/error was encountered while running the model/);
      expect(reply!.finishReason).toBeNull();
    } finally {
      await flaky.close();
    }
  });
});

describe("routing policy", () => {
  it("opens the circuit of a dead origin after N failures, skips it, probes it half-open, and closes it when it is back", async () => {
    let clock = 1_000_000;
    const port = await deadPort();
    const r = router([ollamaTarget("dead", `http://127.0.0.1:${port}`), ollamaTarget("backup", ollama.url)], { breaker: { failureThreshold: 2, cooldownMs: 10_000 }, now: () => clock });
    const outcomes = async () => {
      const { result, reply } = await run(r, chat("ping"));
      expect(result.ok).toBe(true);
      expect(reply!.text).toBe("You said: ping");
      return routeHeader(result.route);
    };
    expect(await outcomes()).toBe("origin:backup; tried=dead:unreachable");
    expect(await outcomes()).toBe("origin:backup; tried=dead:unreachable");
    expect(r.health.snapshot()["m/dead"]).toMatchObject({ state: "open", consecutiveFailures: 2, retryInMs: 10_000 });
    const before = ollama.requests.length;
    expect(await outcomes()).toBe("origin:backup; tried=dead:circuit_open"); // not even tried
    expect(ollama.requests.length).toBe(before + 1);

    clock += 10_000; // cooldown over: one probe, which fails → open again
    expect(await outcomes()).toBe("origin:backup; tried=dead:unreachable");
    expect(r.health.snapshot()["m/dead"]!.state).toBe("open");
    expect(await outcomes()).toBe("origin:backup; tried=dead:circuit_open");

    // The origin comes back on its port; after the next cooldown the probe succeeds and closes it.
    const revived = await startOllamaFixture({ models: ["llama3.2:1b"] }, port);
    try {
      clock += 10_000;
      expect(await outcomes()).toBe("origin:dead");
      expect(r.health.snapshot()["m/dead"]!.state).toBe("closed");
      expect(await outcomes()).toBe("origin:dead");
    } finally {
      await revived.close();
    }
  });

  it("lets only one request probe a half-open target", async () => {
    let clock = 0;
    const port = await deadPort();
    const r = router([ollamaTarget("dead", `http://127.0.0.1:${port}`), ollamaTarget("backup", ollama.url)], { breaker: { failureThreshold: 1, cooldownMs: 100 }, now: () => clock });
    await run(r, chat("a"));
    clock += 100;
    const [x, y] = await Promise.all([r.route("m", chat("b")), r.route("m", chat("c"))]);
    const tried = [x!, y!].map((res) => res.route.attempts[0]!.outcome).sort();
    expect(tried).toEqual(["circuit_open", "unreachable"]);
    for (const res of [x!, y!]) if (res.ok) await collectReply(res.events);
  });

  it("falls back when an origin is slow to the first token, or never answers at all", async () => {
    const slow = await startOllamaFixture({ models: ["llama3.2:1b"], firstDelayMs: 3000 });
    try {
      const r = router([
        ollamaTarget("hung", `http://127.0.0.1:${blackHolePort}`, { timeouts: { connectMs: 300 } }),
        ollamaTarget("slow", slow.url, { timeouts: { firstTokenMs: 400 } }),
        ollamaTarget("fast", ollama.url),
      ]);
      const t0 = Date.now();
      const { result, reply } = await run(r, chat("quick"));
      const ms = Date.now() - t0;
      expect(result.ok).toBe(true);
      expect(reply!.text).toBe("You said: quick");
      expect(routeHeader(result.route)).toBe("origin:fast; tried=hung:connect_timeout,slow:first_token_timeout");
      expect(ms).toBeGreaterThanOrEqual(700);
      expect(ms).toBeLessThan(2500);

      // Alone, the slow origin's timeout is a 504 naming it.
      const only = await run(router([ollamaTarget("slow", slow.url, { timeouts: { firstTokenMs: 300 } })]), chat("x"));
      expect(only.result.ok === false && only.result.status).toBe(504);
      expect(only.result.ok === false && only.result.error.error.message).toBe("Origin 'slow' sent no token within 300 ms.");
    } finally {
      await slow.close();
    }
  });

  it("ends a reply that stalls between tokens with an error event, and never splices in another origin", async () => {
    const staller = await startOllamaFixture({ models: ["llama3.2:1b"], stallAfter: 2 });
    try {
      const r = router([ollamaTarget("staller", staller.url, { timeouts: { interTokenMs: 300 } }), ollamaTarget("fast", ollama.url)]);
      const before = ollama.requests.length;
      const result = await r.route("m", chat("a b c d"));
      expect(result?.ok).toBe(true);
      if (!result?.ok) return;
      const events: RouteEvent[] = [];
      for await (const ev of result.events) events.push(ev);
      expect(events.filter((e) => e.type === "delta").map((e) => (e as { text: string }).text).join("")).toBe("You said:");
      const last = events.at(-1)!;
      expect(last.type === "error" && last.error.error.message).toBe("Origin 'staller' stalled: no token for 300 ms.");
      expect(ollama.requests.length).toBe(before); // no retry after the first token
    } finally {
      await staller.close();
    }
  });

  it("cancels the upstream request when the consumer stops reading", async () => {
    const dripping = await startOllamaFixture({ models: ["llama3.2:1b"], interDelayMs: 200 });
    try {
      const r = router([ollamaTarget("drip", dripping.url)]);
      const result = await r.route("m", chat("w ".repeat(50).trim()));
      if (!result?.ok) throw new Error("expected a stream");
      let n = 0;
      for await (const ev of result.events) if (ev.type === "delta" && ++n === 2) break;
      expect(n).toBe(2);
      for (let i = 0; i < 50 && dripping.disconnects() === 0; i++) await new Promise((res) => setTimeout(res, 10));
      expect(dripping.disconnects()).toBe(1); // the origin saw the request go away
      expect(r.health.snapshot()["m/drip"]!.failures).toBe(0);
    } finally {
      await dripping.close();
    }
  });

  it("answers 429 with Retry-After when every target is overloaded, and 502 when they fail differently", async () => {
    const busy = await startOllamaFixture({ models: ["llama3.2:1b"], failWith: 429 });
    const broken = await startOllamaFixture({ models: ["llama3.2:1b"], failWith: 500 });
    try {
      const all429 = await run(router([ollamaTarget("busy1", busy.url), ollamaTarget("busy2", busy.url)]), chat("x"));
      expect(all429.result.ok === false && all429.result.status).toBe(429);
      expect(all429.result.ok === false && all429.result.headers["retry-after"]).toBe("2");
      const mixed = await run(router([ollamaTarget("busy", busy.url), ollamaTarget("broken", broken.url)]), chat("x"));
      expect(mixed.result.ok === false && mixed.result.status).toBe(502);
      expect(mixed.result.ok === false && mixed.result.error.error.message).toMatch(/busy.*429.*broken.*500/);
      // 429 is not a health failure; a 500 is.
      const r = router([ollamaTarget("busy", busy.url), ollamaTarget("broken", broken.url)]);
      await run(r, chat("x"));
      expect(r.health.snapshot()["m/busy"]!.failures).toBe(0);
      expect(r.health.snapshot()["m/broken"]!.failures).toBe(1);
    } finally {
      await busy.close();
      await broken.close();
    }
  });

  it("orders targets by priority, and spreads equal priorities by weight", () => {
    const targets = [
      { ...ollamaTarget("a", ollama.url), priority: 1, weight: 3 },
      { ...ollamaTarget("b", ollama.url), priority: 1, weight: 1 },
      { ...ollamaTarget("c", ollama.url), priority: 0 },
      { kind: "edge", id: "edge", priority: 5 },
    ];
    let seed = 1;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const r = router(targets, { random });
    const firsts = { a: 0, b: 0 };
    for (let i = 0; i < 4000; i++) {
      const order = r.order("m").map((t) => t.id);
      expect(order[0]).toBe("c");
      expect(order[3]).toBe("edge");
      firsts[order[1] as "a" | "b"]++;
    }
    expect(firsts.a / 4000).toBeGreaterThan(0.7);
    expect(firsts.a / 4000).toBeLessThan(0.8);
  });

  it("routes to the edge through the worker's handler, as a fallback", async () => {
    const port = await deadPort();
    const r = new OriginRouter({
      routes: parseRoutes({ models: [{ model: "m", targets: [ollamaTarget("dead", `http://127.0.0.1:${port}`), { kind: "edge", id: "edge" }] }] }),
      edge: async function* () {
        yield { type: "delta", text: "from the edge" };
        yield { type: "end", finishReason: "stop" };
      },
    });
    const { result, reply } = await run(r, chat("x"));
    expect(routeHeader(result.route)).toBe("edge:edge; tried=dead:unreachable");
    expect(reply).toMatchObject({ text: "from the edge", finishReason: "stop" });
  });

  it("edge first: a request too big for the edge model goes on to the origin, the edge stays healthy; other edge refusals are final", async () => {
    const refusal = (status: number, code: string) => ({ status, toJSON: () => ({ error: { message: `edge says ${code}`, type: "invalid_request_error", param: null, code } }) });
    let refuse = refusal(400, "context_length_exceeded");
    const seen: string[] = [];
    const r = new OriginRouter({
      routes: parseRoutes({ models: [{ model: "m", targets: [{ kind: "edge", id: "edge", model: "small-edge" }, ollamaTarget("ollama", ollama.url)] }] }),
      edge: (_req, target) => {
        seen.push(target.model);
        throw refuse;
      },
    });
    const { result, reply } = await run(r, chat("too long for the edge"));
    expect(routeHeader(result.route)).toBe("origin:ollama; tried=edge:unsupported");
    expect(reply!.text).toBe("You said: too long for the edge");
    expect(seen).toEqual(["small-edge"]);
    expect(r.health.snapshot()["m/edge"]!.consecutiveFailures).toBe(0);

    refuse = refusal(400, "invalid_chat");
    const refused = await run(r, chat("x"));
    expect(refused.result.ok).toBe(false);
    if (!refused.result.ok) expect(refused.result).toMatchObject({ status: 400, error: { error: { code: "invalid_chat" } } });
  });
});

describe("route registry", () => {
  it("validates the config and resolves keys from secrets", () => {
    const config = JSON.stringify({ models: [{ model: "big", targets: [{ kind: "origin", id: "gpu", baseUrl: "https://gpu.example/v1/", model: "org/model", dialect: "openai", apiKeySecret: "GPU_KEY", timeouts: { firstTokenMs: 5000 } }] }] });
    const table = parseRoutes(config, { GPU_KEY: "sk-1" });
    expect(table.models()).toEqual(["big"]);
    expect(table.get("big")!.targets[0]).toEqual({
      kind: "origin",
      id: "gpu",
      baseUrl: "https://gpu.example/v1",
      model: "org/model",
      dialect: "openai",
      apiKey: "sk-1",
      timeouts: { connectMs: 10_000, firstTokenMs: 5000, interTokenMs: 30_000, totalMs: 0 },
      weight: 1,
      priority: 0,
    });
    expect(() => parseRoutes(config, {})).toThrow(/secret GPU_KEY is not set/);
    expect(() => parseRoutes("{nope")).toThrow(/not JSON/);
    expect(() => parseRoutes({ models: [{ model: "x", targets: [{ kind: "origin", id: "a", baseUrl: "ftp://x", model: "m", dialect: "openai" }] }] })).toThrow(/baseUrl/);
    expect(() => parseRoutes({ models: [{ model: "x", targets: [{ kind: "origin", id: "a", baseUrl: "http://x", model: "m", dialect: "grpc" }] }] })).toThrow(/dialect/);
    expect(() => parseRoutes({ models: [{ model: "x", targets: [] }] })).toThrow(/at least one target/);
    expect(() => parseRoutes({ models: [{ model: "x", targets: [{ kind: "edge", id: "e" }, { kind: "edge", id: "e" }] }] })).toThrow(/appears twice/);
    // An edge target runs the route's model id from the bucket unless it names another.
    const edges = parseRoutes({ models: [{ model: "x", targets: [{ kind: "edge" }, { kind: "edge", id: "small", model: "x-q4" }] }] }).get("x")!.targets;
    expect(edges).toEqual([
      { kind: "edge", id: "edge", model: "x", weight: 1, priority: 0 },
      { kind: "edge", id: "small", model: "x-q4", weight: 1, priority: 1 },
    ]);
  });
});
