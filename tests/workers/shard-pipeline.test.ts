/**
 * A model cut into ≥ 3 ShardDOs computes what the whole model computes: the fixture rule
 * (teacher-forced logits and greedy tokens) through the pipeline, the API's greedy tokens equal to
 * the unsharded engine's, a gguf-split model, recovery when a shard loses its state, and sessions
 * spread over pipeline replicas, each kept on the one that holds its KV.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { servingBackend } from "../../durable-objects/backends.ts";
import { getPipelineModel, type PipelineModel } from "../../durable-objects/pipeline.ts";
import { checkRun, type ReferenceFile, runFixtureAsync } from "../helpers/parity-rule.ts";
import { api, fixtureBytes, testEnv } from "./helpers.ts";
import { referenceTokens } from "./reference.ts";
import { completeIds, Q8, shardStats, shardStub, uploadSharded } from "./shard-helpers.ts";

const PROMPT = [1, 15, 200, 33, 7, 91, 4, 300, 12, 5];

describe("a model sharded across ShardDOs", () => {
  it("passes the fixture rule through a pipeline of 3 shards", async () => {
    const { manifest, plan } = await uploadSharded("shard-fixture", Q8, { nCtx: 96, minShards: 3 });
    expect(plan.shards.map((s) => [s.first, s.end])).toEqual([[0, 2], [2, 3], [3, 4]]);
    expect(plan.shards[0]!.tensors).toContain("token_embd.weight");
    expect(plan.shards[2]!.tensors).toEqual(expect.arrayContaining(["output_norm.weight", "output.weight"]));
    const loaded = await getPipelineModel(testEnv, manifest, servingBackend(testEnv.BACKEND), () => {});
    const reference = JSON.parse(new TextDecoder().decode(await fixtureBytes("fixtures/reference/llama-Q8_0.json"))) as ReferenceFile;
    const model = loaded.model as PipelineModel;
    for (const run of reference.runs) {
      const out = await runFixtureAsync({ createCache: (o) => model.createCache(o), forward: (c, t) => model.forward(c, t) }, run);
      // The serving backend quantizes activations like llama.cpp (wasm), or keeps them float (js).
      const why = testEnv.BACKEND === "js" ? checkRun(run, out, "f64", 1e-2) : checkRun(run, out, "llama", 0.15);
      expect(why).toBeNull();
    }
    const stats = await shardStats("shard-fixture", plan);
    expect(stats.map((s) => s.shard && [s.shard.first, s.shard.end])).toEqual([[0, 2], [2, 3], [3, 4]]);
    for (const s of stats) expect(s.memory.peakBytes).toBeLessThanOrEqual(s.memory.budgetBytes);
  });

  it("gives the unsharded engine's greedy tokens through the API", async () => {
    await uploadSharded("shard-api", Q8, { nCtx: 64, minShards: 3 });
    const expected = await referenceTokens(Q8, PROMPT, 20, { ignoreEos: true });
    expect(await completeIds("shard-api", PROMPT, 20)).toEqual(expected);
  });

  it("loads a gguf-split model (3 files) shard by shard", async () => {
    const { manifest } = await uploadSharded("shard-split", Q8, { nCtx: 64, minShards: 3, split: 3 });
    expect(manifest.file).toBe("models/shard-split-00001-of-00003.gguf");
    const expected = await referenceTokens(Q8, PROMPT, 12, { ignoreEos: true });
    expect(await completeIds("shard-split", PROMPT, 12)).toEqual(expected);
  });

  it("completes a turn whose shard was reset mid-generation with the undisturbed tokens, history intact", async () => {
    const { plan } = await uploadSharded("shard-reset", Q8, { nCtx: 96, minShards: 3 });
    const expected = await referenceTokens(Q8, PROMPT, 60, { ignoreEos: true });
    const reply = completeIds("shard-reset", PROMPT, 60, "reset-session");
    // Wait until the middle shard has served some decode steps, then reset it.
    const middle = shardStub("shard-reset", 1);
    for (let i = 0; i < 2000; i++) {
      const s = await middle.stats();
      if (s.steps >= 8) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const before = await middle.stats();
    expect(before.steps).toBeGreaterThanOrEqual(8);
    expect(before.steps).toBeLessThan(60);
    // ctx.abort(): workerd resets the object as Cloudflare does (memory gone, in-flight calls fail).
    await expect(runInDurableObject(middle, (_instance, state) => state.abort("test: reset the shard"))).rejects.toThrow("reset the shard");
    expect(await reply).toEqual(expected);
    const after = await shardStats("shard-reset", plan);
    // A fresh instance (the old one would have counted all 60 steps) that started empty: it
    // recomputed the session from its tokens in one step.
    expect(after[1]!.steps).toBeLessThan(60);
    expect(Math.max(...after[1]!.forwards.map((f) => f.tokens))).toBeGreaterThanOrEqual(PROMPT.length + before.steps - 1);
    const history = await api("/v1/sessions/reset-session");
    const body = (await history.json()) as { messages: { role: string; token_ids?: number[]; status: string }[] };
    expect(body.messages.map((m) => [m.role, m.status])).toEqual([["prompt", "complete"], ["completion", "complete"]]);
    expect(body.messages[1]!.token_ids).toEqual(expected);
  });
  it("spreads sessions over pipeline replicas and keeps each on the replica that holds its KV", async () => {
    const { plan } = await uploadSharded("shard-replicas", Q8, { nCtx: 64, minShards: 3, replicas: 2 });
    const turn = async (session: string, prompt: number[]) => {
      const res = await api("/v1/completions", {
        json: { model: "shard-replicas", prompt, max_tokens: 4, temperature: 0, ignore_eos: true, return_token_ids: true },
        headers: { "x-session-id": session },
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { choices: { token_ids: number[] }[]; usage: { prompt_tokens_details: { cached_tokens: number } } };
    };
    const sessions = Array.from({ length: 6 }, (_, i) => ({ name: `replica-${i}`, prompt: [1, 20 + i, 7, 300 - i] }));
    for (const s of sessions) {
      const first = await turn(s.name, s.prompt);
      // The follow-up reuses the first turn's KV, which only its own replica holds: no miss, no recompute.
      const next = [...s.prompt, ...first.choices[0]!.token_ids, 77];
      const second = await turn(s.name, next);
      // Cached: all but the last generated token (sampled, never fed) and the new one.
      expect(second.usage.prompt_tokens_details.cached_tokens).toBe(next.length - 2);
      expect(second.choices[0]!.token_ids).toEqual(await referenceTokens(Q8, next, 4, { ignoreEos: true }));
    }
    const replicas = await Promise.all([0, 1].map((r) => shardStats("shard-replicas", plan, r)));
    for (const stats of replicas) {
      expect(stats.every((s) => s.steps > 0)).toBe(true);
      expect(stats.every((s) => s.misses === 0)).toBe(true);
    }
    // Each step went to one replica only: two turns of one prefill step and 3 decode steps per session.
    expect(replicas[0]![0]!.steps + replicas[1]![0]!.steps).toBe(sessions.length * 2 * 4);
  });
});
