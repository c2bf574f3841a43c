/**
 * `npm run bench:api`: local latency of the API on the demo model.
 *
 * - time to first token (client side, streaming chat, 8 new tokens): in a fresh ephemeral session
 *   (a new SessionDO each time, whole prompt prefilled) and in a warm session (same conversation
 *   resent, its KV-cache reused);
 * - the Worker→SessionDO hop: for non-streaming 1-token completions the object reports its own time
 *   and the worker the time around its call to the object (Server-Timing `session` and `worker`);
 *   their difference is what the hop adds;
 * - /health round trip for scale.
 *
 * Starts its own server the way `npm start` does (fresh local state, free port) unless PETREL_URL
 * names a running one. BENCH_N sets the number of timed requests per figure (default 20).
 * Prints a table, or JSON with --json.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startWorker } from "./origin/spawn-worker.ts";

const N = Number(process.env.BENCH_N ?? 20);
const KEY = process.env.PETREL_KEY ?? "sk-petrel-local";
const MODEL = process.env.PETREL_MODEL ?? "petrel-demo";

async function startServer(): Promise<{ base: string; stop: () => Promise<void> }> {
  const state = mkdtempSync(join(tmpdir(), "petrel-bench-"));
  const worker = await startWorker({ state, demo: true, timeoutMs: 180_000 });
  return {
    base: worker.url,
    stop: async () => {
      await worker.stop();
      rmSync(state, { recursive: true, force: true });
    },
  };
}

const headers = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${KEY}`, "content-type": "application/json", ...extra });

/** Milliseconds until the first content delta of a streamed chat reply. */
async function ttft(base: string, session: string | undefined): Promise<number> {
  const started = performance.now();
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: headers(session ? { "x-session-id": session } : {}),
    body: JSON.stringify({ model: MODEL, messages: [{ role: "system", content: "You are Petrel." }, { role: "user", content: "Say something about the edge." }], max_tokens: 8, temperature: 0, stream: true }),
  });
  if (!res.ok) throw new Error(`chat: HTTP ${res.status} ${await res.text()}`);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let first: number | undefined;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    if (first === undefined && /"content":"[^"]/.test(buffer)) first = performance.now() - started;
  }
  if (first === undefined) throw new Error("no content in the stream");
  return first;
}

/** Worker time around the object call minus the object's own time, from Server-Timing. */
async function hop(base: string): Promise<{ hop: number; total: number }> {
  const started = performance.now();
  const res = await fetch(`${base}/v1/completions`, {
    method: "POST",
    headers: headers({ "x-session-id": "bench-hop" }),
    body: JSON.stringify({ model: MODEL, prompt: [1], max_tokens: 1, temperature: 0 }),
  });
  await res.arrayBuffer();
  const total = performance.now() - started;
  const timing = res.headers.get("server-timing") ?? "";
  const dur = (name: string) => Number(timing.match(new RegExp(`${name};dur=([\\d.]+)`))?.[1]);
  const h = dur("worker") - dur("session");
  if (!Number.isFinite(h)) throw new Error(`no server-timing in the response: '${timing}'`);
  return { hop: h, total };
}

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { n: s.length, p50: +q(0.5).toFixed(1), p95: +q(0.95).toFixed(1), min: +s[0]!.toFixed(1), max: +s.at(-1)!.toFixed(1) };
}

async function main(): Promise<void> {
  const json = process.argv.includes("--json");
  const external = process.env.PETREL_URL;
  const server = external ? { base: external.replace(/\/+$/, ""), stop: async () => {} } : await startServer();
  try {
    const { base } = server;
    // Warm-up: the first request loads the model into the isolate.
    await ttft(base, undefined);
    await ttft(base, "bench-warm");
    await hop(base);

    const health: number[] = [];
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      await (await fetch(`${base}/health`)).arrayBuffer();
      health.push(performance.now() - t);
    }
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < N; i++) {
      cold.push(await ttft(base, undefined));
      warm.push(await ttft(base, "bench-warm"));
    }
    const hops: number[] = [];
    const totals: number[] = [];
    for (let i = 0; i < N; i++) {
      const r = await hop(base);
      hops.push(r.hop);
      totals.push(r.total);
    }
    const result = {
      model: MODEL,
      base,
      health_rtt_ms: stats(health),
      ttft_ephemeral_session_ms: stats(cold),
      ttft_warm_session_ms: stats(warm),
      worker_to_session_hop_ms: stats(hops),
      one_token_completion_total_ms: stats(totals),
    };
    if (json) process.stdout.write(JSON.stringify(result) + "\n");
    else {
      process.stdout.write(`petrel bench:api — ${MODEL} at ${base}, ${N} requests per figure (ms)\n`);
      process.stdout.write(`${"figure".padEnd(34)}${"p50".padStart(9)}${"p95".padStart(9)}${"min".padStart(9)}${"max".padStart(9)}\n`);
      for (const [name, s] of Object.entries(result)) {
        if (typeof s !== "object") continue;
        process.stdout.write(`${name.padEnd(34)}${String(s.p50).padStart(9)}${String(s.p95).padStart(9)}${String(s.min).padStart(9)}${String(s.max).padStart(9)}\n`);
      }
    }
  } finally {
    await server.stop();
  }
}

await main().catch((e) => {
  process.stderr.write(`bench:api: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
