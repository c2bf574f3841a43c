/**
 * One llama.cpp measurement in its own process (run by scripts/bench.ts, or by hand):
 *
 *   node --import tsx scripts/bench/peer-runner.ts --model FILE --prompt-ids IDS.json \
 *     [--threads 1] [--gen 64] [--peer-dir .cache/peer] [--info]
 *
 * Loads node-llama-cpp from --peer-dir (never from the project's node_modules: the peer is
 * optional), evaluates the prompt ids as one batch (prefill, ending with the logits and greedy
 * pick of the last position), then decodes --gen tokens one at a time with greedy sampling.
 * Prints one JSON line (PeerResult). With --info it only prints the library's system info.
 *
 *   … --model FILE --sessions PROMPTS.json --concurrency 1,2,4,8 [--gen 32] [--threads 1]
 *
 * Concurrent sequences, as `npm run bench:batch` runs sessions: for each level n, n sequences of
 * one context (which llama.cpp decodes together, one batch per step) each take prompts[i] and
 * generate --gen tokens greedily; prints one JSON line (PeerSessionsResult): aggregate generated
 * tokens/s over the wall time of each level.
 */
import { join, resolve } from "node:path";
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

export interface PeerResult {
  pp_tok_s: number;
  tg_tok_s: number;
  /** Peak RSS of this process (MB). */
  peak_rss_mb: number;
  /** RSS after node-llama-cpp and its native addon are loaded, before the model (MB). */
  rss_before_load_mb: number;
  threads: number;
  prompt: number;
  gen: number;
  /** The greedy tokens decoded (the first one comes from the prefill's last position). */
  tokens: number[];
  context_size: number;
  /** As node-llama-cpp reports it: true/false, or "auto" when llama.cpp decides. */
  flash_attention: boolean | string;
  load_s: number;
}

export interface PeerSessionsResult {
  threads: number;
  gen: number;
  throughput: { concurrency: number; tok_s: number }[];
}

export interface PeerInfo {
  node_llama_cpp: string;
  llama_cpp_release: string;
  system_info: string;
  cpu_math_cores: number;
  gpu: string | false;
}

function arg(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

const mb = (bytes: number) => bytes / (1024 * 1024);

/* The small part of node-llama-cpp's API used here (the package is not a dependency, so no types). */
interface NLCSequence {
  evaluate(tokens: number[], options?: { temperature?: number }): AsyncGenerator<number, void, void | number | number[]>;
}
interface NLCContext {
  contextSize: number;
  flashAttention: boolean | string;
  getSequence(): NLCSequence;
  dispose(): Promise<void>;
}
interface NLCModel {
  createContext(options: Record<string, unknown>): Promise<NLCContext>;
  dispose(): Promise<void>;
}
interface NLCLlama {
  systemInfo: string;
  cpuMathCores: number;
  gpu: string | false;
  llamaCppRelease: { release: string; repo: string };
  loadModel(options: Record<string, unknown>): Promise<NLCModel>;
  dispose(): Promise<void>;
}
interface NLCModule {
  getLlama(options: Record<string, unknown>): Promise<NLCLlama>;
  LlamaLogLevel: Record<string, string>;
}

export async function loadPeer(peerDir: string): Promise<{ mod: NLCModule; version: string }> {
  const pkgDir = join(peerDir, "node_modules/node-llama-cpp");
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { version: string; exports?: unknown };
  const mod = (await import(pathToFileURL(join(pkgDir, "dist/index.js")).href)) as NLCModule;
  return { mod, version: pkg.version };
}

async function main(argv: string[]): Promise<void> {
  const peerDir = resolve(arg(argv, "peer-dir") ?? ".cache/peer");
  const threads = Number(arg(argv, "threads") ?? "1");
  const { mod, version } = await loadPeer(peerDir);
  const llama = await mod.getLlama({ gpu: false, build: "never", maxThreads: threads, logLevel: mod.LlamaLogLevel.error ?? "error", progressLogs: false });

  if (argv.includes("--info")) {
    const info: PeerInfo = {
      node_llama_cpp: version,
      llama_cpp_release: llama.llamaCppRelease.release,
      system_info: llama.systemInfo,
      cpu_math_cores: llama.cpuMathCores,
      gpu: llama.gpu,
    };
    process.stdout.write(JSON.stringify(info) + "\n");
    await llama.dispose();
    return;
  }

  const sessionsPath = arg(argv, "sessions");
  if (sessionsPath) {
    const modelPath = arg(argv, "model");
    if (!modelPath) throw new Error("--sessions needs --model");
    const prompts = JSON.parse(readFileSync(sessionsPath, "utf8")) as number[][];
    const levels = (arg(argv, "concurrency") ?? "1").split(",").map(Number);
    const nGen = Number(arg(argv, "gen") ?? "32");
    if (levels.some((n) => !Number.isInteger(n) || n < 1 || n > prompts.length)) throw new Error(`--concurrency needs 1..${prompts.length} (the prompts given)`);
    process.stdout.write(JSON.stringify(await sessions(llama, modelPath, prompts, levels, nGen, threads)) + "\n");
    await llama.dispose();
    return;
  }

  const modelPath = arg(argv, "model");
  const idsPath = arg(argv, "prompt-ids");
  if (!modelPath || !idsPath) throw new Error("usage: peer-runner --model FILE --prompt-ids IDS.json [--threads N] [--gen N]");
  const prompt = JSON.parse(readFileSync(idsPath, "utf8")) as number[];
  const nGen = Number(arg(argv, "gen") ?? "64");
  if (!Array.isArray(prompt) || prompt.length === 0 || !Number.isInteger(nGen) || nGen < 1) throw new Error("bad --prompt-ids or --gen");

  const rssBefore = process.memoryUsage().rss;
  let t = performance.now();
  const model = await llama.loadModel({ modelPath: resolve(modelPath), gpuLayers: 0 });
  // One batch holds the whole prompt, as in `petrel bench` (one batched prefill).
  const nCtx = prompt.length + nGen + 1;
  const context = await model.createContext({ contextSize: nCtx, batchSize: prompt.length, threads, sequences: 1 });
  const loadSeconds = (performance.now() - t) / 1000;
  const sequence = context.getSequence();

  // evaluate() yields after the prompt's batch (its last position's greedy pick), then after each
  // single-token step that feeds the previous pick back: 1 + nGen yields = prefill + nGen steps.
  const tokens: number[] = [];
  t = performance.now();
  let ppSeconds = 0;
  for await (const token of sequence.evaluate(prompt, { temperature: 0 })) {
    if (tokens.length === 0) {
      ppSeconds = (performance.now() - t) / 1000;
      t = performance.now();
    }
    tokens.push(token);
    if (tokens.length === nGen + 1) break;
  }
  const tgSeconds = (performance.now() - t) / 1000;

  const result: PeerResult = {
    pp_tok_s: prompt.length / ppSeconds,
    tg_tok_s: nGen / tgSeconds,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    rss_before_load_mb: mb(rssBefore),
    threads,
    prompt: prompt.length,
    gen: nGen,
    tokens,
    context_size: context.contextSize,
    flash_attention: context.flashAttention,
    load_s: loadSeconds,
  };
  process.stdout.write(JSON.stringify(result) + "\n");
  await context.dispose();
  await model.dispose();
  await llama.dispose();
}

async function sessions(llama: NLCLlama, modelPath: string, prompts: number[][], levels: number[], nGen: number, threads: number): Promise<PeerSessionsResult> {
  const model = await llama.loadModel({ modelPath: resolve(modelPath), gpuLayers: 0 });
  const longest = Math.max(...prompts.map((p) => p.length));
  const throughput: PeerSessionsResult["throughput"] = [];
  for (const n of levels) {
    const context = await model.createContext({ contextSize: n * (longest + nGen + 1), batchSize: n * longest, threads, sequences: n });
    const started = performance.now();
    const counts = await Promise.all(prompts.slice(0, n).map(async (prompt) => {
      const sequence = context.getSequence();
      let generated = 0;
      for await (const _ of sequence.evaluate(prompt, { temperature: 0 })) if (++generated === nGen) break;
      return generated;
    }));
    throughput.push({ concurrency: n, tok_s: (counts.reduce((a, b) => a + b, 0) / (performance.now() - started)) * 1000 });
    await context.dispose();
  }
  await model.dispose();
  return { threads, gen: nGen, throughput };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    await main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`peer-runner: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  }
}
