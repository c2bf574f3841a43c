/**
 * `npm run bench:origin [-- --model FILE --backend js|wasm --threads N --tokens N --prompt-tokens N --concurrency 1,4,8 --rounds N --hop-requests N --json]`
 *
 * 1. Aggregate decode throughput of the Node origin: C concurrent streaming completions (token-id
 *    prompts, fixed length: ignore_eos), batching on vs off (`--no-batching`), at each
 *    concurrency; the two origins run as separate processes, measured alternately.
 * 2. The added latency of the edge hop: the same requests straight to the origin and through the
 *    worker as `npm start` runs it (wrangler dev: workerd/miniflare, ORIGIN_ROUTES → the origin),
 *    sessionless and with a session (worker → SessionDO → origin, history in DO SQLite), alternated
 *    request by request. p50/p95 of time to first token (1-token streamed replies: wrangler dev
 *    holds a streamed body back in large pieces, so a longer reply's first token reaches the
 *    client late locally — not so on Cloudflare) and of total time (`--hop-tokens`-token replies).
 *    Also the routing code alone, behind a Node HTTP front (scripts/origin/route-proxy.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { OriginRouter, parseRoutes } from "../workers/routing/index.ts";
import { serveRoutes } from "./origin/route-proxy.ts";
import { spawnOrigin, type OriginProcess } from "./origin/spawn.ts";
import { NO_MODERATION, startWorker } from "./origin/spawn-worker.ts";

const { values } = parseArgs({
  options: {
    model: { type: "string", default: "tests/fixtures/reference/llama-Q8_0.gguf" },
    backend: { type: "string", default: "js" },
    threads: { type: "string", default: "1" },
    tokens: { type: "string", default: "32" },
    "prompt-tokens": { type: "string", default: "16" },
    concurrency: { type: "string", default: "1,4,8" },
    rounds: { type: "string", default: "3" },
    "hop-requests": { type: "string", default: "40" },
    "hop-tokens": { type: "string", default: "16" },
    json: { type: "boolean", default: false },
  },
});
const tokens = Number(values.tokens);
const promptTokens = Number(values["prompt-tokens"]);
const levels = values.concurrency!.split(",").map(Number);
const rounds = Number(values.rounds);
const hopRequests = Number(values["hop-requests"]);
const hopTokens = Number(values["hop-tokens"]);
const say = (s: string) => {
  if (!values.json) process.stdout.write(`${s}\n`);
};

/** A token-id prompt that differs per stream (so no two sequences are identical). */
const prompt = (i: number) => [1, ...Array.from({ length: promptTokens - 1 }, (_, k) => 3 + ((i * 37 + k * 11) % 250))];

interface StreamResult {
  tokens: number;
  ttftMs: number;
  totalMs: number;
  /** performance.now() of the first and the last token. */
  first: number;
  last: number;
}

/** One streaming completion read as raw SSE; counts token ids (return_token_ids). */
async function stream(base: string, i: number, maxTokens: number, headers: Record<string, string> = {}): Promise<StreamResult> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "bench", prompt: prompt(i), max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, return_token_ids: true }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let raw = "";
  let count = 0;
  let ttft = -1;
  let first = 0;
  let last = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    raw += value;
    let at: number;
    while ((at = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const chunk = JSON.parse(event.slice(6)) as { choices: { text?: string; token_ids?: number[] }[]; error?: unknown };
      if (chunk.error) throw new Error(JSON.stringify(chunk.error));
      const c = chunk.choices[0];
      const n = c?.token_ids?.length ?? (c?.text ? 1 : 0);
      if (n > 0) {
        last = performance.now();
        if (ttft < 0) {
          ttft = last - t0;
          first = last;
        }
      }
      count += n;
    }
  }
  if (count !== maxTokens) throw new Error(`${base}: expected ${maxTokens} tokens, got ${count}: ${raw.slice(0, 2000)}`);
  return { tokens: count, ttftMs: ttft, totalMs: performance.now() - t0, first, last };
}

async function aggregate(origin: OriginProcess, concurrency: number): Promise<{ tokS: number; decodeTokS: number; wallMs: number; ttftP50: number }> {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: concurrency }, (_, i) => stream(origin.url, i, tokens)));
  const wallMs = performance.now() - t0;
  const total = results.reduce((s, r) => s + r.tokens, 0);
  if (total !== concurrency * tokens) throw new Error(`expected ${concurrency * tokens} tokens, got ${total}`);
  // Decode phase: tokens after each stream's first, over the time from the first first-token to the last token.
  const decodeMs = Math.max(...results.map((r) => r.last)) - Math.min(...results.map((r) => r.first));
  const decodeTokS = ((total - concurrency) / decodeMs) * 1000;
  return { tokS: (total / wallMs) * 1000, decodeTokS, wallMs, ttftP50: percentile(results.map((r) => r.ttftMs), 50) };
}

async function metrics(origin: OriginProcess): Promise<{ batchedSteps: number; maxSeqsPerCall: number; steps: number }> {
  return ((await (await fetch(`${origin.url}/metrics`)).json()) as { engine: { batchedSteps: number; maxSeqsPerCall: number; steps: number } }).engine;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const median = (xs: number[]) => percentile(xs, 50);

const common = ["--model", values.model!, "--backend", values.backend!, "--threads", values.threads!, "--max-running", String(Math.max(...levels)), "--max-queue", "64"];
say(`model ${values.model}, backend ${values.backend}, threads ${values.threads}; ${promptTokens}-token prompts, ${tokens} generated tokens per stream, ${rounds} round(s) per cell (median)`);
const on = await spawnOrigin(common);
const off = await spawnOrigin([...common, "--no-batching"]);
const rows: { concurrency: number; on: number; off: number; onDecode: number; offDecode: number; onTtft: number; offTtft: number; maxBatchOn: number }[] = [];
try {
  for (const o of [on, off]) await stream(o.url, 0, 4); // warm up (JIT, first allocation)
  for (const c of levels) {
    const onRuns: number[] = [];
    const offRuns: number[] = [];
    const onTtft: number[] = [];
    const offTtft: number[] = [];
    const onDecode: number[] = [];
    const offDecode: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const a = await aggregate(on, c);
      const b = await aggregate(off, c);
      onRuns.push(a.tokS);
      offRuns.push(b.tokS);
      onTtft.push(a.ttftP50);
      offTtft.push(b.ttftP50);
      onDecode.push(a.decodeTokS);
      offDecode.push(b.decodeTokS);
    }
    const m = await metrics(on);
    rows.push({ concurrency: c, on: median(onRuns), off: median(offRuns), onDecode: median(onDecode), offDecode: median(offDecode), onTtft: median(onTtft), offTtft: median(offTtft), maxBatchOn: m.maxSeqsPerCall });
    say(`  ${c} stream(s): batching on ${median(onRuns).toFixed(1)} tok/s, off ${median(offRuns).toFixed(1)} tok/s (×${(median(onRuns) / median(offRuns)).toFixed(2)})`);
  }
} finally {
  await off.stop();
}

// The hops: the same requests straight to the origin, through the worker (sessionless, and with a
// session), and through the routing code alone; alternated request by request.
const route = (url: string) => JSON.stringify({ models: [{ model: "bench", targets: [{ kind: "origin", id: "node", baseUrl: `${url}/v1`, model: "bench", dialect: "openai" }] }] });
const state = mkdtempSync(join(tmpdir(), "petrel-bench-origin-"));
const auth = { authorization: "Bearer sk-petrel-local" };
type Path = "direct" | "worker" | "session" | "routing";
const samples: Record<Path, { ttft: number[]; total: number[] }> = { direct: { ttft: [], total: [] }, worker: { ttft: [], total: [] }, session: { ttft: [], total: [] }, routing: { ttft: [], total: [] } };
try {
  // Moderation off: the hop is measured alone (and the classifier may cut the fixture's gibberish short).
  const worker = await startWorker({ state, vars: { ORIGIN_ROUTES: route(on.url), MODERATION_POLICIES: NO_MODERATION } });
  const proxy = await serveRoutes(new OriginRouter({ routes: parseRoutes(route(on.url)) }));
  const send: Record<Path, (i: number, n: number) => Promise<StreamResult>> = {
    direct: (i, n) => stream(on.url, i, n),
    worker: (i, n) => stream(worker.url, i, n, auth),
    session: (i, n) => stream(worker.url, i, n, { ...auth, "x-session-id": `bench-${i}-${n}` }),
    routing: (i, n) => stream(proxy.url, i, n),
  };
  const paths = Object.keys(send) as Path[];
  try {
    for (let i = 0; i < 5; i++) for (const p of paths) await send[p](1000 + i, 1); // warm up
    for (let i = 0; i < hopRequests; i++) {
      for (const p of paths) samples[p].ttft.push((await send[p](i, 1)).ttftMs);
      for (const p of paths) samples[p].total.push((await send[p](i, hopTokens)).totalMs);
    }
  } finally {
    await proxy.close();
    await worker.stop();
  }
} finally {
  await on.stop();
  rmSync(state, { recursive: true, force: true });
}
const stat = (xs: number[]) => ({ p50: percentile(xs, 50), p95: percentile(xs, 95) });
/** Per path: its own p50/p95, and p50/p95 of the per-request difference to the direct request next to it. */
const hop = Object.fromEntries(
  (Object.keys(samples) as Path[]).map((p) => [
    p,
    {
      ttft: stat(samples[p].ttft),
      total: stat(samples[p].total),
      ...(p !== "direct" && {
        addedTtft: stat(samples[p].ttft.map((t, i) => t - samples.direct.ttft[i]!)),
        addedTotal: stat(samples[p].total.map((t, i) => t - samples.direct.total[i]!)),
      }),
    },
  ]),
) as Record<Path, { ttft: { p50: number; p95: number }; total: { p50: number; p95: number }; addedTtft?: { p50: number; p95: number }; addedTotal?: { p50: number; p95: number } }>;

if (values.json) {
  process.stdout.write(`${JSON.stringify({ model: values.model, backend: values.backend, threads: Number(values.threads), promptTokens, tokens, rounds, throughput: rows, hop: { requests: hopRequests, ttftTokens: 1, totalTokens: hopTokens, ...hop } }, null, 2)}\n`);
} else {
  say("");
  say("| streams | batching on tok/s | batching off tok/s | on/off | decode-phase tok/s on / off | TTFT p50 on / off (ms) | max seqs per forward (on) |");
  say("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const r of rows) {
    say(`| ${r.concurrency} | ${r.on.toFixed(1)} | ${r.off.toFixed(1)} | ${(r.on / r.off).toFixed(2)}× | ${r.onDecode.toFixed(1)} / ${r.offDecode.toFixed(1)} | ${r.onTtft.toFixed(0)} / ${r.offTtft.toFixed(0)} | ${r.maxBatchOn} |`);
  }
  const one = rows.find((r) => r.concurrency === 1);
  if (one) for (const r of rows) if (r.concurrency > 1) say(`aggregate at ${r.concurrency} streams vs 1: batching on ${(r.on / one.on).toFixed(2)}×, off ${(r.off / one.off).toFixed(2)}×`);
  say("");
  say(`hops (${hopRequests} requests each; TTFT of 1-token replies, total time of ${hopTokens}-token replies; ms):`);
  say("| path | TTFT p50 / p95 | added TTFT p50 / p95 | total p50 / p95 | added total p50 / p95 |");
  say("| --- | ---: | ---: | ---: | ---: |");
  const names: Record<Path, string> = { direct: "origin, direct", worker: "worker (wrangler dev) → origin", session: "worker → SessionDO → origin", routing: "Node front + workers/routing → origin" };
  const f = (s: { p50: number; p95: number } | undefined) => (s ? `${s.p50.toFixed(1)} / ${s.p95.toFixed(1)}` : "—");
  for (const p of Object.keys(hop) as Path[]) say(`| ${names[p]} | ${f(hop[p].ttft)} | ${f(hop[p].addedTtft)} | ${f(hop[p].total)} | ${f(hop[p].addedTotal)} |`);
}
