/**
 * `npm run bench:origin [-- --model FILE --backend js|wasm --threads N --tokens N --prompt-tokens N --concurrency 1,4,8 --rounds N --hop-requests N --json]`
 *
 * 1. Aggregate decode throughput of the Node origin: C concurrent streaming completions (token-id
 *    prompts, fixed length: ignore_eos), batching on vs off (`--no-batching`), at each
 *    concurrency; the two origins run as separate processes, measured alternately.
 * 2. The added latency of a routing hop: the same 1-token request straight to the origin and
 *    through workers/routing behind a Node HTTP front (scripts/origin/route-proxy.ts), p50/p95
 *    of time to the first streamed token. This stands in for the edge hop until the Hono worker
 *    calls the router; it is a Node process on loopback, not workerd.
 */
import { parseArgs } from "node:util";
import { OriginRouter, parseRoutes } from "../workers/routing/index.ts";
import { serveRoutes } from "./origin/route-proxy.ts";
import { spawnOrigin, type OriginProcess } from "./origin/spawn.ts";

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
    json: { type: "boolean", default: false },
  },
});
const tokens = Number(values.tokens);
const promptTokens = Number(values["prompt-tokens"]);
const levels = values.concurrency!.split(",").map(Number);
const rounds = Number(values.rounds);
const hopRequests = Number(values["hop-requests"]);
const say = (s: string) => {
  if (!values.json) process.stdout.write(`${s}\n`);
};

/** A token-id prompt that differs per stream (so no two sequences are identical). */
const prompt = (i: number) => [1, ...Array.from({ length: promptTokens - 1 }, (_, k) => 3 + ((i * 37 + k * 11) % 250))];

interface StreamResult {
  tokens: number;
  ttftMs: number;
  /** performance.now() of the first and the last token. */
  first: number;
  last: number;
}

/** One streaming completion read as raw SSE; counts token ids (return_token_ids). */
async function stream(base: string, i: number, maxTokens: number, extra: Record<string, unknown> = {}): Promise<StreamResult> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "bench", prompt: prompt(i), max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true, return_token_ids: true, ...extra }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let count = 0;
  let ttft = -1;
  let first = 0;
  let last = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
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
  return { tokens: count, ttftMs: ttft, first, last };
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

// The routing hop: straight vs through the router (Node HTTP front), time to first token.
const router = new OriginRouter({ routes: parseRoutes({ models: [{ model: "bench", targets: [{ kind: "origin", id: "node", baseUrl: `${on.url}/v1`, model: "bench", dialect: "openai" }] }] }) });
const proxy = await serveRoutes(router);
const direct: number[] = [];
const routed: number[] = [];
try {
  for (let i = 0; i < 5; i++) {
    await stream(on.url, i, 1);
    await stream(proxy.url, i, 1);
  }
  for (let i = 0; i < hopRequests; i++) {
    direct.push((await stream(on.url, i, 1)).ttftMs);
    routed.push((await stream(proxy.url, i, 1)).ttftMs);
  }
} finally {
  await proxy.close();
  await on.stop();
}
const hop = {
  directP50: percentile(direct, 50),
  directP95: percentile(direct, 95),
  routedP50: percentile(routed, 50),
  routedP95: percentile(routed, 95),
  addedP50: percentile(routed.map((r, i) => r - direct[i]!), 50),
  addedP95: percentile(routed.map((r, i) => r - direct[i]!), 95),
};

if (values.json) {
  process.stdout.write(`${JSON.stringify({ model: values.model, backend: values.backend, threads: Number(values.threads), promptTokens, tokens, rounds, throughput: rows, routingHop: hop, edgeHop: null }, null, 2)}\n`);
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
  say(`routing hop (Node front + workers/routing → origin, loopback; ${hopRequests} requests, time to first token):`);
  say(`  direct p50 ${hop.directP50.toFixed(1)} ms, p95 ${hop.directP95.toFixed(1)} ms; routed p50 ${hop.routedP50.toFixed(1)} ms, p95 ${hop.routedP95.toFixed(1)} ms; added p50 ${hop.addedP50.toFixed(1)} ms, p95 ${hop.addedP95.toFixed(1)} ms`);
  say("edge hop (Hono worker in workerd → origin): not measured — the worker does not call workers/routing yet.");
}
