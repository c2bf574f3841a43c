/**
 * Rate limits, the usage ledger, memory accounting against the isolate budget, and loading a
 * model from R2 once per isolate with range reads.
 */
import { runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { planMemory } from "../../durable-objects/memory.ts";
import type { SessionDO } from "../../durable-objects/session.ts";
import { parseGGUF } from "../../kernels/gguf/reader.ts";
import { readModelConfig } from "../../kernels/model/config.ts";
import { sessionName } from "../../workers/app.ts";
import { api, fixtureBytes, KEY_LIMITED, KEY_TOKENS, testEnv, uploadModel, type ErrorBody } from "./helpers.ts";

const Q8 = "fixtures/reference/llama-Q8_0.gguf";

beforeAll(async () => {
  await uploadModel("limits-q8", Q8);
});

const oneToken = (key: string, extra: Record<string, unknown> = {}) =>
  api("/v1/completions", { key, json: { model: "limits-q8", prompt: [1, 2, 3], max_tokens: 1, temperature: 0, ...extra } });

describe("rate limits", () => {
  it("requests per minute: the 4th request of a 3-RPM key is 429 rate_limit_exceeded with Retry-After", async () => {
    const ok: Response[] = [];
    for (let i = 0; i < 3; i++) ok.push(await oneToken(KEY_LIMITED));
    expect(ok.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(ok.map((r) => r.headers.get("x-ratelimit-remaining-requests"))).toEqual(["2", "1", "0"]);
    expect(ok[0]!.headers.get("x-ratelimit-limit-requests")).toBe("3");
    const refused = await oneToken(KEY_LIMITED);
    expect(refused.status).toBe(429);
    const retry = Number(refused.headers.get("retry-after"));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    const err = (await refused.json()) as ErrorBody;
    expect(err.error).toMatchObject({ type: "requests", code: "rate_limit_exceeded", param: null });
    expect(err.error.message).toContain("Limit 3, Used 3");
  });

  it("tokens per minute: once a key's tokens in the window reach its TPM, it is refused until they age out", async () => {
    // TPM 40: a 40-token prompt + 1 completion token uses it all.
    const prompt = Array.from({ length: 40 }, (_, i) => (i * 7 + 1) % 512);
    const first = await oneToken(KEY_TOKENS, { prompt });
    expect(first.status).toBe(200);
    expect(first.headers.get("x-ratelimit-remaining-tokens")).toBe("40");
    const refused = await oneToken(KEY_TOKENS);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(((await refused.json()) as ErrorBody).error).toMatchObject({ type: "tokens", code: "rate_limit_exceeded" });
  });

  it("the window slides: the limiter admits again after 60 s (checked on the object's clock)", async () => {
    const account = testEnv.ACCOUNTS.get(testEnv.ACCOUNTS.idFromName("tenant-window"));
    const t0 = 1_000_000_000_000;
    const limits = { rpm: 2, tpm: 100 };
    expect((await account.admit("k", limits, t0)).ok).toBe(true);
    expect((await account.admit("k", limits, t0 + 10_000)).ok).toBe(true);
    const refused = await account.admit("k", limits, t0 + 20_000);
    expect(refused).toMatchObject({ ok: false, kind: "requests", retryAfter: 40 });
    expect((await account.admit("k", limits, t0 + 60_001)).ok).toBe(true);
    // Keys are limited separately.
    expect((await account.admit("other", limits, t0 + 60_002)).ok).toBe(true);
  });
});

describe("usage ledger", () => {
  it("GET /v1/usage sums prompt, cached and completion tokens per model per day for the tenant", async () => {
    const before = (await (await api("/v1/usage", { key: KEY_LIMITED })).json()) as { data: { model: string; requests: number; prompt_tokens: number; cached_tokens: number; completion_tokens: number }[] };
    const row = before.data.find((r) => r.model === "limits-q8");
    // The three admitted 1-token requests of the RPM test, same session-less prompt [1, 2, 3].
    expect(row).toMatchObject({ requests: 3, prompt_tokens: 9, cached_tokens: 0, completion_tokens: 3 });
    const today = new Date().toISOString().slice(0, 10);
    const body = (await (await api(`/v1/usage?start_date=${today}&end_date=${today}`, { key: KEY_LIMITED })).json()) as { tenant: string; data: { date: string }[] };
    expect(body.tenant).toBe("tenant-limited");
    expect(body.data.every((r) => r.date === today)).toBe(true);
    expect(((await (await api("/v1/usage?start_date=2001-01-01&end_date=2001-01-02", { key: KEY_LIMITED })).json()) as { data: unknown[] }).data).toEqual([]);
    expect((await api("/v1/usage?date=yesterday", { key: KEY_LIMITED })).status).toBe(400);
  });

  it("cached tokens of a session turn are recorded", async () => {
    const prompt = [1, 5, 9, 13, 17, 21];
    for (let i = 0; i < 2; i++) {
      const r = await api("/v1/completions", { headers: { "x-session-id": "ledger" }, json: { model: "limits-q8", prompt, max_tokens: 2, temperature: 0 } });
      expect(r.status).toBe(200);
    }
    const body = (await (await api("/v1/usage")).json()) as { tenant: string; data: { model: string; cached_tokens: number }[] };
    expect(body.tenant).toBe("tenant-a");
    expect(body.data.find((r) => r.model === "limits-q8")!.cached_tokens).toBeGreaterThanOrEqual(5);
  });
});

describe("memory accounting", () => {
  it("a model whose weights + KV-cache + scratch exceed the budget is refused with the numbers, before its weights are read", async () => {
    // The long-context model served at 2^20 positions: its f32 KV-cache alone is 2·2·2^20·32·4 bytes = 512 MB.
    await uploadModel("huge-ctx", "models/long-ctx.gguf", { nCtx: 1 << 20 });
    const header = parseGGUF(await fixtureBytes("models/long-ctx.gguf"));
    const plan = planMemory(header, readModelConfig(header), { nCtx: 1 << 20, kvType: "f32", prefillChunk: 16 });
    expect(plan.kvCache).toBe(2 * 2 * (1 << 20) * 32 * 4);

    const res = await api("/v1/chat/completions", { json: { model: "huge-ctx", messages: [{ role: "user", content: "hi" }], max_tokens: 1 } });
    expect(res.status).toBe(400);
    const err = (await res.json()) as ErrorBody;
    expect(err.error).toMatchObject({ type: "invalid_request_error", code: "model_too_large", param: "model" });
    expect(err.error.message).toContain("does not fit in the isolate memory budget of 112.0 MB");
    expect(err.error.message).toContain("KV-cache 512.0 MB (n_ctx 1048576, f32)");
    expect(err.error.message).toContain(`= ${(plan.total / 1048576).toFixed(1)} MB`);

    const stub = testEnv.SESSIONS.get(testEnv.SESSIONS.idFromName(sessionName("tenant-a", "probe-mem")));
    const stats = await runInDurableObject(stub, (o: SessionDO) => o.stats());
    expect(stats.isolate.models.some((k: string) => k.startsWith("huge-ctx@"))).toBe(false);
  });

  it("when sessions' KV-caches fill the budget, the least recently used idle one is evicted and rebuilt on its next turn", async () => {
    // 81920 positions: 40 MB of f32 KV-cache per session; two fit beside the weights, three do not.
    await uploadModel("wide-ctx", "models/long-ctx.gguf", { nCtx: 81920 });
    const stub = (s: string) => testEnv.SESSIONS.get(testEnv.SESSIONS.idFromName(sessionName("tenant-a", s)));
    const turn = async (s: string) => {
      const r = await api("/v1/completions", { headers: { "x-session-id": s }, json: { model: "wide-ctx", prompt: "The edge", max_tokens: 3, temperature: 0, return_token_ids: true } });
      expect(r.status).toBe(200);
      return (await r.json()) as { choices: { token_ids: number[] }[]; usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } } };
    };
    const first = await turn("evict-1");
    await turn("evict-2");
    expect(await runInDurableObject(stub("evict-1"), (o: SessionDO) => o.stats().hasCache)).toBe(true);
    await turn("evict-3");
    const s1 = await runInDurableObject(stub("evict-1"), (o: SessionDO) => o.stats());
    expect(s1.hasCache).toBe(false);
    expect(s1.isolate.memoryUsed).toBeLessThanOrEqual(112 * 1048576);
    expect(await runInDurableObject(stub("evict-2"), (o: SessionDO) => o.stats().hasCache)).toBe(true);
    expect(await runInDurableObject(stub("evict-3"), (o: SessionDO) => o.stats().hasCache)).toBe(true);
    // Rebuilt: nothing cached, the same answer.
    const again = await turn("evict-1");
    expect(again.usage.prompt_tokens_details.cached_tokens).toBe(0);
    expect(again.choices[0]!.token_ids).toEqual(first.choices[0]!.token_ids);
    // Release the big caches for the tests that follow.
    for (const s of ["evict-1", "evict-2", "evict-3"]) await api(`/v1/sessions/${s}`, { method: "DELETE" });
  });

  it("an f16 KV-cache halves the cache's share of the plan", async () => {
    const header = parseGGUF(await fixtureBytes("models/tiny-chat.gguf"));
    const config = readModelConfig(header);
    const f32 = planMemory(header, config, { nCtx: 4096, kvType: "f32", prefillChunk: 16 });
    const f16 = planMemory(header, config, { nCtx: 4096, kvType: "f16", prefillChunk: 16 });
    expect(f16.kvCache * 2).toBe(f32.kvCache);
    expect(f32.weights).toBe(f16.weights);
  });
});

describe("loading from R2", () => {
  it("weights load once per isolate, with a few range reads, shared by every session", async () => {
    await uploadModel("once-q8", Q8);
    const stub = (s: string) => testEnv.SESSIONS.get(testEnv.SESSIONS.idFromName(sessionName("tenant-a", s)));
    const statsBefore = await runInDurableObject(stub("once-1"), (o: SessionDO) => o.stats().isolate);
    for (const s of ["once-1", "once-2", "once-3"]) {
      const r = await api("/v1/completions", { headers: { "x-session-id": s }, json: { model: "once-q8", prompt: [1, 2], max_tokens: 1 } });
      expect(r.status).toBe(200);
    }
    const after = await runInDurableObject(stub("once-3"), (o: SessionDO) => o.stats().isolate);
    expect(after.loads - statsBefore.loads).toBe(1);
    expect(after.models.filter((k: string) => k.startsWith("once-q8@"))).toHaveLength(1);
    // One read for the header (1 MB prefix) and one per ≤16 MB range of tensor data.
    expect(after.rangeReads - statsBefore.rangeReads).toBe(2);
    expect(after.bytesRead - statsBefore.bytesRead).toBeLessThanOrEqual(3644896 + (1 << 20));

    // A re-upload (new etag) is loaded again, replacing the old version.
    await uploadModel("once-q8", "fixtures/reference/llama-Q4_0.gguf");
    await api("/v1/completions", { headers: { "x-session-id": "once-1" }, json: { model: "once-q8", prompt: [1, 2], max_tokens: 1 } });
    const reloaded = await runInDurableObject(stub("once-1"), (o: SessionDO) => o.stats().isolate);
    expect(reloaded.loads - after.loads).toBe(1);
    expect(reloaded.models.filter((k: string) => k.startsWith("once-q8@"))).toHaveLength(1);
  });
});
