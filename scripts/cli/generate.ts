/**
 * `petrel generate --model FILE (--prompt S | --tokens 1,2,3) --n N [sampling flags] [--force IDS]
 * [--logits-out F] [--stop-at-eos] [--backend js|wasm|webgpu] --json`
 * Greedy without sampling flags; does not stop at EOS unless --stop-at-eos. --logits-out writes
 * one little-endian float32 row of n_vocab per continuation token: row s = logits after
 * prompt + continuation[:s].
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { Sampler, type SamplingParams } from "../../kernels/sampling/index.ts";
import { Tokenizer } from "../../kernels/tokenizer/index.ts";
import { CliError, Flags, parseArgs } from "./args.ts";
import { type Generator, computeBackend, loadGenerator } from "./backend.ts";
import { openDiskModel } from "./io.ts";

const OPTIONS = ["model", "prompt", "tokens", "n", "temperature", "top-k", "top-p", "min-p", "repeat-penalty", "frequency-penalty", "presence-penalty", "seed", "force", "logits-out", "stop-at-eos", "backend", "threads", "json", "ctx"];

function samplingParams(flags: Flags): SamplingParams | undefined {
  const params: SamplingParams = {
    temperature: flags.number("temperature", { min: 0 }),
    topK: flags.number("top-k", { integer: true, min: 0 }),
    topP: flags.number("top-p", { min: 0, max: 1 }),
    minP: flags.number("min-p", { min: 0, max: 1 }),
    repeatPenalty: flags.number("repeat-penalty", { min: 0 }),
    frequencyPenalty: flags.number("frequency-penalty"),
    presencePenalty: flags.number("presence-penalty"),
    seed: flags.number("seed", { integer: true, min: 0 }),
  };
  const given = Object.values(params).some((v) => v !== undefined);
  return given ? params : undefined;
}

export async function run(argv: string[]): Promise<void> {
  const flags = new Flags(parseArgs(argv, ["stop-at-eos", "json"]), OPTIONS);
  const file = await openDiskModel(flags.requireString("model"));
  const backend = computeBackend(flags.string("backend"));
  const n = flags.number("n", { integer: true, min: 0 }) ?? 16;
  const force = flags.ids("force");

  const text = flags.string("prompt");
  const ids = flags.ids("tokens");
  if ((text === undefined) === (ids === undefined)) throw new CliError("give exactly one of --prompt or --tokens");
  // Token-id prompts run on models without a vocabulary too; text needs one.
  const { metadata } = file.header;
  const tokenizer = metadata.has("tokenizer.ggml.model") ? Tokenizer.fromMetadata(metadata) : undefined;
  if (!tokenizer && (text !== undefined || flags.bool("stop-at-eos"))) throw new CliError("this model has no tokenizer: use --tokens");
  const prompt = ids ?? tokenizer!.encode(text!, { addSpecial: true, parseSpecial: true });
  if (prompt.length === 0) throw new CliError("the prompt is empty");

  const model = await loadGenerator(file, backend, flags.number("threads", { integer: true, min: 1 }));
  file.close();
  let tokens: number[];
  try {
    tokens = await continuation(model, { prompt, n, force }, flags, tokenizer);
  } finally {
    model.close();
  }
  const output = tokenizer?.decode(tokens);
  if (flags.bool("json")) process.stdout.write(JSON.stringify({ tokens, ...(output !== undefined && { text: output }) }) + "\n");
  else process.stdout.write((output ?? tokens.join(" ")) + "\n");
}

/** The n tokens after `prompt` (or fewer, with --stop-at-eos), writing --logits-out as they come. */
async function continuation(model: Generator, run: { prompt: number[]; n: number; force?: number[] }, flags: Flags, tokenizer: Tokenizer | undefined): Promise<number[]> {
  const { prompt, n, force } = run;
  for (const id of [...prompt, ...(force ?? [])]) {
    if (id >= model.config.nVocab) throw new CliError(`token id ${id} is outside the vocabulary (0..${model.config.nVocab - 1})`);
  }
  const nCtx = flags.number("ctx", { integer: true, min: 1 }) ?? Math.min(model.config.nCtxTrain, prompt.length + n);
  const cache = model.createCache({ nCtx: Math.max(nCtx, prompt.length + n) });
  const params = samplingParams(flags);
  const sampler = params ? new Sampler(params, model.config.nVocab) : undefined;

  const logitsPath = flags.string("logits-out");
  const logitsFd = logitsPath === undefined ? undefined : openSync(logitsPath, "w");
  const tokens: number[] = [];
  try {
    for await (const token of model.generate(cache, {
      prompt,
      maxTokens: n,
      force,
      pick: sampler && ((logits, history) => sampler.sample(logits, history)),
      onLogits: logitsFd === undefined ? undefined : (logits) => writeSync(logitsFd, new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength)),
    })) {
      tokens.push(token);
      if (flags.bool("stop-at-eos") && tokenizer!.isEog(token)) break;
    }
  } finally {
    if (logitsFd !== undefined) closeSync(logitsFd);
  }
  return tokens;
}
