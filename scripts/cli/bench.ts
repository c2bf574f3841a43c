/**
 * `petrel bench --model FILE [--backend js|wasm|webgpu] [--threads N] [--prompt 128] [--gen 64] --json`
 * Measures one model in this process: prompt tokens/s (one batched prefill), decode tokens/s
 * (one token per step after it), and the process's peak RSS. webgpu: kernels/webgpu/bench.ts,
 * whose result adds the adapter (a CPU-emulated one is a correctness run, not a speed claim).
 */
import { createBackend } from "../../kernels/model/backends/index.ts";
import { argmax } from "../../kernels/model/generate.ts";
import { Model } from "../../kernels/model/model.ts";
import { benchWebGpu } from "../../kernels/webgpu/bench.ts";
import { Flags, parseArgs } from "./args.ts";
import { computeBackend, openWebGpu } from "./backend.ts";
import { openDiskModel } from "./io.ts";

export interface BenchResult {
  pp_tok_s: number;
  tg_tok_s: number;
  peak_rss_mb: number;
  /** RSS after the backend exists and before the model is read: peak − this = what the model adds. */
  rss_before_load_mb: number;
  /** The greedy ids fed to the decode steps. */
  tokens: number[];
  backend: string;
  prompt: number;
  gen: number;
}

export async function run(argv: string[]): Promise<void> {
  const flags = new Flags(parseArgs(argv, ["json"]), ["model", "backend", "threads", "prompt", "tokens", "gen", "json"]);
  const backendName = computeBackend(flags.string("backend"));
  const given = flags.ids("tokens");
  const nPrompt = given?.length || (flags.number("prompt", { integer: true, min: 1 }) ?? 128);
  const nGen = flags.number("gen", { integer: true, min: 1 }) ?? 64;
  if (backendName === "webgpu") {
    const file = await openDiskModel(flags.requireString("model"));
    const gpu = await openWebGpu().catch((e: unknown) => {
      file.close();
      throw e;
    });
    const rssBeforeLoad = process.memoryUsage().rss / 2 ** 20;
    const result = await benchWebGpu(file.header, file.bytesOf, { prompt: nPrompt, promptTokens: given, gen: nGen, gpu }).finally(() => {
      file.close();
      gpu.destroy();
    });
    const rss = { peak_rss_mb: process.resourceUsage().maxRSS / 1024, rss_before_load_mb: rssBeforeLoad };
    print(flags, { ...result, ...rss }, `${result.adapter}${result.software_adapter ? ", a CPU-emulated adapter: not a speed claim" : ""}`);
    return;
  }
  const backend = await createBackend(backendName, { threads: flags.number("threads", { integer: true, min: 1 }) });
  const rssBeforeLoad = process.memoryUsage().rss / 2 ** 20;
  const file = await openDiskModel(flags.requireString("model"));
  const model = Model.load(file.header, file.bytesOf, backend);
  file.close();
  const cache = model.createCache({ nCtx: nPrompt + nGen + 1 });

  // Without --tokens: a fixed pseudo-random prompt that avoids the control tokens at the start of every vocabulary.
  const prompt = given?.length ? given : Array.from({ length: nPrompt }, (_, i) => 3 + ((i * 7919) % (model.config.nVocab - 3)));
  let start = performance.now();
  let logits = model.forward(cache, prompt);
  const ppSeconds = (performance.now() - start) / 1000;

  start = performance.now();
  const tokens: number[] = [];
  for (let i = 0; i < nGen; i++) {
    tokens.push(argmax(logits));
    logits = model.forward(cache, [tokens[i]!]);
  }
  const tgSeconds = (performance.now() - start) / 1000;

  const result: BenchResult = {
    pp_tok_s: nPrompt / ppSeconds,
    tg_tok_s: nGen / tgSeconds,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    rss_before_load_mb: rssBeforeLoad,
    tokens,
    backend: backendName,
    prompt: nPrompt,
    gen: nGen,
  };
  print(flags, result, backendName);
}

function print(flags: Flags, result: BenchResult, what: string): void {
  if (flags.bool("json")) process.stdout.write(JSON.stringify(result) + "\n");
  else process.stdout.write(`prompt ${result.pp_tok_s.toFixed(2)} tok/s, decode ${result.tg_tok_s.toFixed(2)} tok/s, peak RSS ${result.peak_rss_mb.toFixed(0)} MB (${what})\n`);
}
