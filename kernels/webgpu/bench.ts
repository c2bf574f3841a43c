/**
 * Prompt and decode throughput of the WebGPU model on one GGUF file, for `petrel bench --backend
 * webgpu`: the same fixed prompt as the CPU backends' bench, one batched prefill, then one token
 * per step (greedy). Pipelines are compiled and warmed before timing (some drivers compile at
 * first dispatch); the timings include the logits readback, as generation needs it.
 */
import type { GGUFHeader } from "../gguf/types.ts";
import { argmax } from "../model/generate.ts";
import type { TensorBytes } from "../model/model.ts";
import { type DeviceOptions, type WebGpuDevice, requestWebGpuDevice } from "./device.ts";
import { type WebGpuModelOptions, WebGpuModel } from "./model.ts";

export interface WebGpuBenchOptions {
  /** Prompt tokens (default 128) and decoded tokens (default 64). */
  prompt?: number;
  /** The prompt's ids; default `prompt` pseudo-random ids, the CPU bench's. */
  promptTokens?: number[];
  gen?: number;
  /** A device to use; otherwise one is requested with `deviceOptions` (and destroyed after). */
  gpu?: WebGpuDevice;
  deviceOptions?: DeviceOptions;
  model?: WebGpuModelOptions;
}

export interface WebGpuBenchResult {
  pp_tok_s: number;
  tg_tok_s: number;
  prompt: number;
  gen: number;
  backend: "webgpu";
  /** The adapter and kernel precision, as device.ts describes them. */
  adapter: string;
  /** The adapter emulates a GPU on the CPU: figures are a correctness run, not a speed claim. */
  software_adapter: boolean;
  weights_mb: number;
  load_s: number;
  /** The greedy continuation (to compare runs and backends). */
  tokens: number[];
}

export async function benchWebGpu(header: GGUFHeader, bytesOf: TensorBytes, opts: WebGpuBenchOptions = {}): Promise<WebGpuBenchResult> {
  const nPrompt = opts.promptTokens?.length || (opts.prompt ?? 128);
  const nGen = opts.gen ?? 64;
  const gpu = opts.gpu ?? (await requestWebGpuDevice(opts.deviceOptions));
  try {
    let start = performance.now();
    const model = await WebGpuModel.load(header, bytesOf, gpu, opts.model);
    const loadSeconds = (performance.now() - start) / 1000;
    try {
      const { nVocab } = model.config;
      // The CPU bench's prompt: pseudo-random ids that avoid the control tokens at the start of a vocabulary.
      const prompt = opts.promptTokens?.length ? opts.promptTokens : Array.from({ length: nPrompt }, (_, i) => 3 + ((i * 7919) % (nVocab - 3)));
      const warm = model.createCache({ nCtx: 16 });
      await model.forward(warm, prompt.slice(0, 12));
      await model.forward(warm, [prompt[0]!]);
      warm.destroy();

      const cache = model.createCache({ nCtx: nPrompt + nGen + 1 });
      start = performance.now();
      let logits = await model.forward(cache, prompt);
      const ppSeconds = (performance.now() - start) / 1000;
      const tokens: number[] = [];
      start = performance.now();
      for (let i = 0; i < nGen; i++) {
        tokens.push(argmax(logits));
        logits = await model.forward(cache, [tokens.at(-1)!]);
      }
      const tgSeconds = (performance.now() - start) / 1000;
      cache.destroy();
      return {
        pp_tok_s: nPrompt / ppSeconds,
        tg_tok_s: nGen / tgSeconds,
        prompt: nPrompt,
        gen: nGen,
        backend: "webgpu",
        adapter: gpu.description,
        software_adapter: gpu.software,
        weights_mb: model.weightBytes / 2 ** 20,
        load_s: loadSeconds,
        tokens,
      };
    } finally {
      model.destroy();
    }
  } finally {
    if (!opts.gpu) gpu.destroy();
  }
}
