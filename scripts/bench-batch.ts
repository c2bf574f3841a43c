/**
 * `npm run bench:batch [-- --concurrency 1,2,4,8,16 --tokens N --budget-mb N --kv-budget-mb N --ctx N --shards N --window-ms N --moderation --no-install --json]`:
 * a sharded model served by the local worker (wrangler dev, miniflare), batched vs batching
 * disabled. The SmolLM2-135M-shaped Q4_0 model of `npm run bench` (.cache/bench/smollm2-q4_0.gguf)
 * is cut by `planShards` into ≥ 3 ShardDOs and uploaded twice: with the default batching and with
 * maxBatch 1. For each concurrency, that many sessions generate at once (greedy, ignore_eos); the
 * figure is aggregate generated tokens/s over the wall time. Per-shard peak memory (weights + the
 * most KV held + scratch) comes from the shards' "memory peak" log lines, against the budget.
 * Moderation is off unless --moderation (it is per-session work that batching does not share).
 * The peer, side by side in the same run: llama.cpp (node-llama-cpp from --peer-dir, installed
 * unless --no-install; scripts/bench/peer-runner.ts --sessions) on the same file, one thread, the
 * same prompts and token counts as concurrent sequences of one context, which it decodes as one
 * batch per step.
 * Writes the JSON to .cache/bench/results/batch-<time>.json.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { unstable_dev } from "wrangler";
import { DEFAULT_BATCHING, planShards, type ShardPlan } from "../durable-objects/shard-plan.ts";
import { parseGGUF } from "../kernels/gguf/reader.ts";
import { ROOT } from "./cli/upload.ts";
import { ensurePeer } from "./bench/peer.ts";
import type { PeerSessionsResult } from "./bench/peer-runner.ts";
import { runJsonChild } from "./bench/spawn.ts";
import { NO_MODERATION } from "./origin/spawn-worker.ts";

const { values } = parseArgs({
  options: {
    concurrency: { type: "string", default: "1,2,4,8,16" },
    tokens: { type: "string", default: "32" },
    "budget-mb": { type: "string", default: "96" },
    shards: { type: "string", default: "3" },
    ctx: { type: "string", default: "128" },
    "window-ms": { type: "string", default: String(DEFAULT_BATCHING.windowMs) },
    // Room for 16 sessions' caches at n_ctx 128 on the largest shard: fewer would measure evictions.
    "kv-budget-mb": { type: "string", default: "32" },
    // Off by default: the figure is the pipeline's; with it, every session also runs the default output guard.
    moderation: { type: "boolean", default: false },
    "peer-dir": { type: "string", default: ".cache/peer" },
    "no-install": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});
const MODEL_FILE = join(ROOT, ".cache/bench/smollm2-q4_0.gguf");
const KEY = "sk-petrel-local";
const tokens = Number(values.tokens);
const levels = values.concurrency.split(",").map(Number);
const say = (s: string) => process.stderr.write(`${s}\n`);

/**
 * The worker of wrangler.toml on a fresh state directory, through wrangler's dev API with file
 * watching off (other edits to the tree must not restart it mid-benchmark). Its log lines are kept.
 */
async function startWorker(state: string): Promise<{ base: string; logs: string[]; stop: () => Promise<void> }> {
  const logs: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  // wrangler prints the worker's console.log lines to stdout: keep them instead.
  process.stdout.write = ((chunk: string | Uint8Array) => {
    logs.push(...String(chunk).split("\n"));
    return true;
  }) as typeof process.stdout.write;
  const worker = await unstable_dev(join(ROOT, "workers/index.ts"), {
    config: join(ROOT, "wrangler.toml"),
    persistTo: state,
    vars: values.moderation ? {} : { MODERATION_POLICIES: NO_MODERATION },
    ip: "127.0.0.1",
    logLevel: "log",
    experimental: { disableExperimentalWarning: true, watch: false, testMode: false },
  });
  return {
    base: `http://${worker.address}:${worker.port}`,
    logs,
    stop: async () => {
      await worker.stop();
      process.stdout.write = write;
    },
  };
}

const prompt = (i: number) => [1, ...Array.from({ length: 7 }, (_, k) => 3 + ((i * 37 + k * 11) % 250))];

async function complete(base: string, model: string, i: number): Promise<number> {
  const res = await fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model, prompt: prompt(i), max_tokens: tokens, temperature: 0, ignore_eos: true, return_token_ids: true }),
  });
  const body = (await res.json()) as { choices?: { token_ids: number[] }[] };
  if (!res.ok || !body.choices) throw new Error(`${model}: HTTP ${res.status} ${JSON.stringify(body)}`);
  return body.choices[0]!.token_ids.length;
}

/** Aggregate generated tokens/s of `n` sessions at once. */
async function aggregate(base: string, model: string, n: number): Promise<number> {
  const t0 = performance.now();
  const counts = await Promise.all(Array.from({ length: n }, (_, i) => complete(base, model, i)));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== n * tokens) throw new Error(`expected ${n * tokens} tokens, got ${total}`);
  return (total / (performance.now() - t0)) * 1000;
}

if (!existsSync(MODEL_FILE)) throw new Error(`${MODEL_FILE} is missing: run \`npm run bench\` once, which synthesizes it`);
const bytes = new Uint8Array(readFileSync(MODEL_FILE));
const header = parseGGUF(bytes);
const budgetBytes = Number(values["budget-mb"]) * 1024 * 1024;
const nCtx = Number(values.ctx);
const planFor = (maxBatch: number, windowMs: number): ShardPlan =>
  planShards(header, {
    budgetBytes, nCtx, kvType: "f32", kvBudgetBytes: Number(values["kv-budget-mb"]) * 1024 * 1024, minShards: Number(values.shards),
    batching: { ...DEFAULT_BATCHING, maxBatch, windowMs },
  });
const modes = { batched: planFor(16, Number(values["window-ms"])), unbatched: planFor(1, 0) };

type Peak = { model: string; shard: number; peakBytes: number; budgetBytes: number; weightBytes: number; kvPeakBytes: number; scratchBytes: number };

/**
 * One mode on a worker of its own (local workerd keeps every object of the worker in one process:
 * two 100 MB models at once would measure memory pressure, not batching): upload through the CLI,
 * as a user would, load the shards, run every concurrency. Returns tok/s per level and the
 * shards' peaks from their "memory peak" log lines (the last one of each shard).
 */
async function runMode(mode: string, plan: ShardPlan): Promise<{ tokS: number[]; peaks: Peak[] }> {
  const state = mkdtempSync(join(tmpdir(), "petrel-bench-batch-"));
  const model = `bench-${mode}`;
  try {
    const planFile = join(state, "plan.json");
    writeFileSync(planFile, JSON.stringify(plan));
    // miniflare's local R2 now and then drops a 100 MB put on a loaded machine: try again.
    for (let attempt = 1; ; attempt++) {
      const r = spawnSync(join(ROOT, "scripts/petrel"), ["upload", MODEL_FILE, "--name", model, "--persist-to", state, "--ctx", String(nCtx), "--plan", planFile], { encoding: "utf8" });
      if (r.status === 0) break;
      if (attempt === 3) throw new Error(`petrel upload failed: ${r.stderr}`);
      say(`upload of ${model} failed (${r.stderr.trim()}); retrying`);
    }
    const worker = await startWorker(state);
    const tokS: number[] = [];
    try {
      await complete(worker.base, model, 0); // loads the shards
      for (const n of levels) {
        tokS.push(await aggregate(worker.base, model, n));
        say(`${mode}, ${n} sessions: ${tokS.at(-1)!.toFixed(1)} tok/s`);
      }
    } catch (e) {
      say(worker.logs.slice(-40).join("\n"));
      throw e;
    } finally {
      await worker.stop();
    }
    const peaks = new Map<number, Peak>();
    for (const line of worker.logs) {
      const at = line.indexOf('{"level"');
      if (at >= 0 && line.includes('"memory peak"')) {
        const p = JSON.parse(line.slice(at)) as Peak;
        peaks.set(p.shard, p);
      }
    }
    return { tokS, peaks: [...peaks.values()] };
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
}

say(`${MODEL_FILE}: ${modes.batched.shards.length} shards, budget ${values["budget-mb"]} MB, n_ctx ${nCtx}, ${tokens} tokens per session`);
/** llama.cpp on the same file and prompts; undefined (with the reason said) when it cannot run. */
async function runPeer(): Promise<PeerSessionsResult | undefined> {
  const peerDir = join(ROOT, values["peer-dir"]);
  const missing = await ensurePeer(peerDir, { install: !values["no-install"], log: say });
  if (missing) {
    say(`llama.cpp peer unavailable: ${missing}`);
    return undefined;
  }
  const promptsFile = join(mkdtempSync(join(tmpdir(), "petrel-bench-batch-peer-")), "prompts.json");
  writeFileSync(promptsFile, JSON.stringify(Array.from({ length: Math.max(...levels) }, (_, i) => prompt(i))));
  const args = ["--import", "tsx", "scripts/bench/peer-runner.ts", "--model", MODEL_FILE, "--sessions", promptsFile, "--concurrency", levels.join(","), "--gen", String(tokens), "--threads", "1", "--peer-dir", peerDir];
  const outcome = await runJsonChild<PeerSessionsResult>(process.execPath, args, { cwd: ROOT, timeoutS: 900 });
  if (!outcome.ok) say(`llama.cpp peer failed: ${outcome.error}`);
  else for (const r of outcome.value!.throughput) say(`llama.cpp, ${r.concurrency} sequences: ${r.tok_s.toFixed(1)} tok/s`);
  return outcome.value;
}

const batched = await runMode("batched", modes.batched);
const unbatched = await runMode("unbatched", modes.unbatched);
const peer = await runPeer();
const rows = levels.map((concurrency, i) => ({ concurrency, batched: batched.tokS[i]!, unbatched: unbatched.tokS[i]!, llamaCpp: peer?.throughput[i]?.tok_s ?? null }));
const peaks = [...batched.peaks, ...unbatched.peaks];
const one = rows.find((r) => r.concurrency === 1);
const eight = rows.find((r) => r.concurrency === 8);
const result = {
  model: MODEL_FILE,
  tokens,
  nCtx,
  moderation: values.moderation,
  windowMs: Number(values["window-ms"]),
  budgetMB: Number(values["budget-mb"]),
  shards: modes.batched.shards.map((s) => ({ index: s.index, layers: [s.first, s.end], planBytes: s.totalBytes })),
  throughput: rows,
  speedupAt8: one && eight ? { batched: eight.batched / one.batched, unbatched: eight.unbatched / one.unbatched, llamaCpp: one.llamaCpp && eight.llamaCpp ? eight.llamaCpp / one.llamaCpp : null } : null,
  shardPeakMemory: peaks,
};
mkdirSync(join(ROOT, ".cache/bench/results"), { recursive: true });
const out = join(ROOT, `.cache/bench/results/batch-${new Date().toISOString().replaceAll(":", "-")}.json`);
writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
else {
  const fixed = (x: number | null) => (x === null ? "–" : x.toFixed(1));
  say("\n| sessions | batched tok/s | unbatched tok/s | batched / unbatched | llama.cpp tok/s |");
  say("| ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows) say(`| ${r.concurrency} | ${r.batched.toFixed(1)} | ${r.unbatched.toFixed(1)} | ${(r.batched / r.unbatched).toFixed(2)}× | ${fixed(r.llamaCpp)} |`);
  const s8 = result.speedupAt8;
  if (s8) say(`aggregate at 8 sessions vs 1: batched ${s8.batched.toFixed(2)}×, unbatched ${s8.unbatched.toFixed(2)}×, llama.cpp ${s8.llamaCpp === null ? "–" : `${s8.llamaCpp.toFixed(2)}×`}`);
  for (const p of result.shardPeakMemory) say(`${p.model} shard ${p.shard}: peak ${(p.peakBytes / 2 ** 20).toFixed(1)} MB of ${(p.budgetBytes / 2 ** 20).toFixed(1)} MB`);
  say(`results: ${out}`);
}
