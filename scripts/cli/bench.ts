/**
 * `petrel bench --model FILE [--backend js|wasm] [--threads N] [--prompt 128] [--gen 64] --json`
 * Measures one model in this process: prompt tokens/s (one batched prefill), decode tokens/s
 * (one token per step after it), and the process's peak RSS.
 */
import { createBackend, isBackendName } from "../../kernels/model/backends/index.ts";
import { argmax } from "../../kernels/model/generate.ts";
import { Model } from "../../kernels/model/model.ts";
import { CliError, Flags, parseArgs } from "./args.ts";
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
  const backendName = flags.string("backend") ?? "js";
  if (!isBackendName(backendName)) throw new CliError(`--backend must be js or wasm, got '${backendName}'`);
  const given = flags.ids("tokens");
  const nPrompt = given?.length || (flags.number("prompt", { integer: true, min: 1 }) ?? 128);
  const nGen = flags.number("gen", { integer: true, min: 1 }) ?? 64;
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
  if (flags.bool("json")) process.stdout.write(JSON.stringify(result) + "\n");
  else process.stdout.write(`prompt ${result.pp_tok_s.toFixed(2)} tok/s, decode ${result.tg_tok_s.toFixed(2)} tok/s, peak RSS ${result.peak_rss_mb.toFixed(0)} MB (${backendName})\n`);
}
