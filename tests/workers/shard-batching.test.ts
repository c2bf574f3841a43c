/**
 * ShardDO batching: concurrent sessions' steps run as one forward per shard (each weight read once
 * per batched step), with the same tokens as unbatched; a long prefill is chunked and no session
 * waits beyond the scheduler's bound; a tiny KV budget evicts and recomputes; a full queue is 429.
 */
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sessionName } from "../../workers/app.ts";
import { api, testEnv, type ErrorBody } from "./helpers.ts";
import { referenceTokens } from "./reference.ts";
import { completeIds, Q8, shardStats, uploadSharded } from "./shard-helpers.ts";

const PROMPTS = [
  [1, 15, 200, 33, 7],
  [1, 300, 12, 5, 91, 4],
  [1, 42, 43, 44],
  [1, 9, 8, 7, 6, 5, 4, 3],
];
const N = 12;

describe("ShardDO batching", () => {
  it("runs concurrent sessions as one forward per shard, reading each weight once, with the unbatched tokens", async () => {
    // A window far longer than the requests' spread: once the four sessions are active, each
    // forward waits until all of them are in.
    const batched = await uploadSharded("batch-on", Q8, { nCtx: 64, minShards: 3, batching: { windowMs: 2000, maxBatch: PROMPTS.length } });
    const unbatched = await uploadSharded("batch-off", Q8, { nCtx: 64, minShards: 3, batching: { windowMs: 0, maxBatch: 1 } });
    const on = await Promise.all(PROMPTS.map((p) => completeIds("batch-on", p, N)));
    const off = await Promise.all(PROMPTS.map((p) => completeIds("batch-off", p, N)));
    expect(on).toEqual(off);
    for (const [i, p] of PROMPTS.entries()) expect(on[i]).toEqual(await referenceTokens(Q8, p, N, { ignoreEos: true }));

    for (const s of await shardStats("batch-on", batched.plan)) {
      // Every decode step (all but the prompt's) ran in a forward that held all four sessions…
      expect(s.steps).toBe(PROMPTS.length * N);
      expect(s.forwards.filter((f) => f.sessions === PROMPTS.length).length).toBeGreaterThanOrEqual(N - 1);
      expect(s.forwards.reduce((n, f) => n + f.sessions, 0)).toBe(s.steps);
      // …and each forward read the shard's weights exactly once, however many sessions it held.
      for (const f of s.forwards) expect(f.weightBytes).toBe(s.matrixBytes);
    }
    for (const s of await shardStats("batch-off", unbatched.plan)) {
      expect(s.forwards.every((f) => f.sessions === 1)).toBe(true);
      expect(s.forwards.length).toBe(s.steps);
      for (const f of s.forwards) expect(f.weightBytes).toBe(s.matrixBytes);
    }
  });

  it("chunks a long prefill among other sessions' decodes; nobody waits beyond the bound", async () => {
    const batching = { windowMs: 0, maxBatch: 2, tokenBudget: 8, prefillChunk: 4, starvationSteps: 2 };
    const { plan } = await uploadSharded("batch-fair", Q8, { nCtx: 96, minShards: 3, batching });
    const long = Array.from({ length: 60 }, (_, i) => 1 + ((i * 37) % 500));
    const prompts = [long, ...PROMPTS];
    const out = await Promise.all(prompts.map((p) => completeIds("batch-fair", p, 8)));
    for (const [i, p] of prompts.entries()) expect(out[i]).toEqual(await referenceTokens(Q8, p, 8, { ignoreEos: true }));
    for (const s of await shardStats("batch-fair", plan)) {
      expect(s.forwards.every((f) => f.tokens <= batching.tokenBudget && f.sessions <= batching.maxBatch)).toBe(true);
      expect(s.maxWaitBound).toBe(batching.starvationSteps + 2 * batching.maxBatch - 1);
      expect(s.maxWaitObserved).toBeLessThanOrEqual(s.maxWaitBound);
      // Five sessions, four admitted at a time: the one queued step is admitted as soon as an
      // admitted decode completes, which the bound guarantees within maxWaitBound + 1 forwards.
      expect(s.maxQueuedObserved).toBeLessThanOrEqual(s.maxWaitBound + 1);
    }
  });

  it("evicts under a tiny KV budget and recomputes the evicted sessions' tokens", async () => {
    // Room for one session at its full context per shard (2 layers × 64 positions × 128 × f32 ×
    // K and V: four pages); each of these sessions needs three.
    const { plan } = await uploadSharded("batch-evict", Q8, { nCtx: 64, minShards: 3, kvBudgetBytes: 2 * 2 * 64 * 128 * 4 });
    const a = [1, ...Array.from({ length: 35 }, (_, i) => 3 + ((i * 13) % 400))];
    const b = [1, ...Array.from({ length: 36 }, (_, i) => 5 + ((i * 29) % 400))];
    const a1 = await completeIds("batch-evict", a, 6, "evict-a");
    expect(await completeIds("batch-evict", b, 6, "evict-b")).toEqual(await referenceTokens(Q8, b, 6, { ignoreEos: true }));
    // evict-a's cache at the shards is gone: its follow-up is recomputed from the tokens it keeps.
    const a2prompt = [...a, ...a1, 77, 78]; // 50 positions with its reply: four pages
    expect(await completeIds("batch-evict", a2prompt, 6, "evict-a")).toEqual(await referenceTokens(Q8, a2prompt, 6, { ignoreEos: true }));
    // Both at once: they keep evicting each other, and still get their tokens.
    const both = await Promise.all([completeIds("batch-evict", a, 8), completeIds("batch-evict", b, 8)]);
    expect(both).toEqual([await referenceTokens(Q8, a, 8, { ignoreEos: true }), await referenceTokens(Q8, b, 8, { ignoreEos: true })]);
    const stats = await shardStats("batch-evict", plan);
    expect(stats.every((s) => s.evictions > 0 && s.memory.kvPeakBytes <= s.memory.kvBudgetBytes)).toBe(true);
    expect(stats[0]!.misses).toBeGreaterThan(0);
  });

  it("answers 429 with Retry-After when a shard's queue is full", async () => {
    // An idle shard holds its first step for the window (waiting for a batch of 4): the queue is
    // then full, and the others are refused.
    await uploadSharded("batch-busy", Q8, { nCtx: 64, minShards: 3, batching: { windowMs: 1000, maxBatch: 4, queueLimit: 1 } });
    const responses = await Promise.all(PROMPTS.map((prompt) => api("/v1/completions", { json: { model: "batch-busy", prompt, max_tokens: 2, temperature: 0 } })));
    const refused = responses.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    expect(responses.filter((r) => r.status === 200).length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      const body = (await r.json()) as ErrorBody;
      expect(body.error).toMatchObject({ code: "rate_limit_exceeded", type: "requests" });
      expect(body.error.message).toContain("overloaded");
    }
    await Promise.all(responses.filter((r) => r.status === 200).map((r) => r.text()));
  });

  it("answers a streamed request 429 too, as an HTTP status before any event", async () => {
    await uploadSharded("batch-busy-sse", Q8, { nCtx: 64, minShards: 3, batching: { windowMs: 1000, maxBatch: 4, queueLimit: 1 } });
    const responses = await Promise.all(PROMPTS.map((prompt) => api("/v1/completions", { json: { model: "batch-busy-sse", prompt, max_tokens: 2, temperature: 0, stream: true } })));
    const refused = responses.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.headers.get("content-type")).toContain("application/json");
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(((await r.json()) as ErrorBody).error.code).toBe("rate_limit_exceeded");
    }
    const served = responses.filter((r) => r.status === 200);
    expect(served.length).toBeGreaterThan(0);
    for (const r of served) expect(await r.text()).toContain("data: [DONE]");
  });

  it("frees a session's KV in every shard when the session is deleted, and an ephemeral one's after its turn", async () => {
    const { plan } = await uploadSharded("batch-forget", Q8, { nCtx: 64, minShards: 3 });
    const held = async () => (await shardStats("batch-forget", plan)).map((s) => s.sessions);
    await completeIds("batch-forget", PROMPTS[0]!, 4, "kept");
    await completeIds("batch-forget", PROMPTS[1]!, 4);
    // The shards hear of a turn's end without being waited for: poll briefly.
    const settle = async (want: number) => {
      for (let i = 0; i < 50 && (await held()).some((n) => n !== want); i++) await new Promise((r) => setTimeout(r, 20));
      return held();
    };
    expect(await settle(1)).toEqual(plan.shards.map(() => 1));
    expect((await api("/v1/sessions/kept", { method: "DELETE" })).status).toBe(200);
    expect(await settle(0)).toEqual(plan.shards.map(() => 0));
    for (const s of await shardStats("batch-forget", plan)) expect(s.memory.kvBytes).toBe(0);
    // A session object restarted since its turn holds no pipeline cache: it tells the shards from its history.
    await completeIds("batch-forget", PROMPTS[2]!, 4, "restarted");
    expect(await settle(1)).toEqual(plan.shards.map(() => 1));
    await evictDurableObject(testEnv.SESSIONS.get(testEnv.SESSIONS.idFromName(sessionName("tenant-a", "restarted"))));
    expect((await api("/v1/sessions/restarted", { method: "DELETE" })).status).toBe(200);
    expect(await settle(0)).toEqual(plan.shards.map(() => 0));
  });
});
