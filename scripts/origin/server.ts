/**
 * Starts the Node origin in this process: loads a GGUF model on a compute backend, wraps the
 * backend to meter its weight traffic, runs the serving engine on it and serves the OpenAI API
 * over node:http. `main.ts` is the command line around it; the benchmark uses it directly.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { Engine } from "../../kernels/engine/engine.ts";
import { MeteredBackend } from "../../kernels/engine/metered-backend.ts";
import { parseGGUF } from "../../kernels/gguf/reader.ts";
import type { KVType } from "../../kernels/model/backend.ts";
import { createBackend } from "../../kernels/model/backends/index.ts";
import { loadModel } from "../../kernels/model/model.ts";
import { loadWebGpuModel } from "../../kernels/webgpu/model.ts";
import { Tokenizer } from "../../kernels/tokenizer/index.ts";
import { type ComputeBackend, openWebGpu } from "../cli/backend.ts";
import { createOriginApp, internalError, tooLarge } from "./app.ts";
import { serveFetch } from "./node-http.ts";

export interface OriginOptions {
  /** Path of the GGUF file. */
  model: string;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** webgpu: the whole model on a WebGPU adapter (no adapter is an error, never a CPU fallback). */
  backend?: ComputeBackend;
  threads?: number;
  apiKey?: string;
  /** false: one forward call per sequence (the benchmark's baseline). */
  batching?: boolean;
  /** The id the API reports; the file name without .gguf by default. */
  modelId?: string;
  /** Context size of one request; default min(training context, 4096). */
  ctx?: number;
  kvType?: KVType;
  maxRunning?: number;
  maxBatchSeqs?: number;
  tokenBudget?: number;
  prefillChunk?: number;
  maxQueue?: number;
  /** All KV-caches together stay under this many MiB; admission waits for room. Default unlimited. */
  kvBudgetMb?: number;
  /** ms an idle engine waits so that requests arriving together start in one batch. */
  batchWindowMs?: number;
  maxBodyBytes?: number;
  log?: (msg: string, fields: Record<string, unknown>) => void;
}

export interface RunningOrigin {
  url: string;
  port: number;
  engine: Engine;
  /** Weight traffic of a CPU backend (none for webgpu). */
  metered?: MeteredBackend;
  modelId: string;
  close(): Promise<void>;
}

export async function startOrigin(opts: OriginOptions): Promise<RunningOrigin> {
  const log = opts.log ?? (() => {});
  const started = performance.now();
  const file = parseGGUF(new Uint8Array(readFileSync(opts.model)));
  const backendName = opts.backend ?? "js";
  const threads = opts.threads ?? 1;
  const gpu = backendName === "webgpu" ? await openWebGpu() : undefined;
  const metered = backendName === "webgpu" ? undefined : new MeteredBackend(await createBackend(backendName, { threads }));
  const model = gpu ? await loadWebGpuModel(file, gpu) : loadModel(file, metered!);
  const tokenizer = Tokenizer.fromMetadata(file.metadata);
  const template = file.metadata.get("tokenizer.chat_template");
  const nCtx = Math.min(opts.ctx ?? 4096, model.config.nCtxTrain);
  const maxRunning = opts.maxRunning ?? 8;
  const engine = new Engine(model, {
    tokenizer,
    batching: opts.batching ?? true,
    maxRunning,
    maxBatchSeqs: opts.maxBatchSeqs ?? maxRunning,
    tokenBudget: opts.tokenBudget ?? 256,
    prefillChunk: opts.prefillChunk ?? 64,
    maxQueue: opts.maxQueue ?? 64,
    batchWindowMs: opts.batchWindowMs ?? 0,
    ...(opts.kvBudgetMb !== undefined && { kvBudgetBytes: opts.kvBudgetMb * 1024 * 1024 }),
    nCtx,
    kvType: opts.kvType,
  });
  const modelId = opts.modelId ?? basename(opts.model).replace(/\.gguf$/i, "");
  const info = { backend: gpu ? `webgpu (${gpu.description})` : metered!.name, threads, file: basename(opts.model), n_ctx: nCtx, max_running: maxRunning };
  const app = createOriginApp({ engine, tokenizer, modelId, chatTemplate: typeof template === "string" ? template : undefined, nCtx, apiKey: opts.apiKey, metered, info, log });
  const server = await serveFetch(app.fetch, {
    host: opts.host ?? "127.0.0.1",
    port: opts.port ?? 0,
    maxBodyBytes: opts.maxBodyBytes ?? 4 << 20,
    tooLarge,
    onError: (err) => {
      log("bridge error", { error: String(err) });
      return internalError();
    },
  });
  log("origin ready", { url: server.url, model: modelId, load_ms: Math.round(performance.now() - started), ...info, batching: engine.batching });
  return {
    url: server.url,
    port: server.port,
    engine,
    metered,
    modelId,
    close: async () => {
      engine.close();
      await server.close();
      gpu?.destroy();
    },
  };
}
