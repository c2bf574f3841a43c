/**
 * `npm run origin -- --model FILE --port P [--threads N] [--backend js|wasm|webgpu] [--api-key K] [--no-batching]`
 *
 * Petrel's Node origin: one GGUF model behind an OpenAI-compatible API with continuous batching.
 * Prints one JSON line `{"event":"listening","url":...}` on stdout when it accepts requests;
 * logs are JSON lines on stderr. SIGINT/SIGTERM stop it cleanly.
 */
import { parseArgs } from "node:util";
import { CliError } from "../cli/args.ts";
import { type ComputeBackend, computeBackend } from "../cli/backend.ts";
import { startOrigin } from "./server.ts";

const USAGE = `usage: npm run origin -- --model FILE [--port P] [--host H] [--threads N] [--backend js|wasm|webgpu]
       [--api-key K] [--no-batching] [--model-id ID] [--ctx N] [--kv-type f32|f16]
       [--max-running N] [--max-batch N] [--token-budget N] [--prefill-chunk N] [--max-queue N]
       [--batch-window-ms N] [--kv-budget-mb N]
The API key may also come from PETREL_ORIGIN_API_KEY.`;

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function int(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer ≥ ${min}, got '${value}'`);
  return n;
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      model: { type: "string" },
      port: { type: "string" },
      host: { type: "string" },
      threads: { type: "string" },
      backend: { type: "string" },
      "api-key": { type: "string" },
      "no-batching": { type: "boolean" },
      "model-id": { type: "string" },
      ctx: { type: "string" },
      "kv-type": { type: "string" },
      "max-running": { type: "string" },
      "max-batch": { type: "string" },
      "token-budget": { type: "string" },
      "prefill-chunk": { type: "string" },
      "max-queue": { type: "string" },
      "batch-window-ms": { type: "string" },
      "kv-budget-mb": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  }));
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (!values.model) fail("--model is required");
let backend: ComputeBackend;
try {
  backend = computeBackend(values.backend);
} catch (e) {
  fail((e as CliError).message);
}
const kvType = values["kv-type"] ?? "f32";
if (kvType !== "f32" && kvType !== "f16") fail(`--kv-type must be f32 or f16, got '${kvType}'`);

const log = (msg: string, fields: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ level: "info", component: "origin", msg, ...fields })}\n`);

try {
  const origin = await startOrigin({
    model: values.model,
    host: values.host ?? "127.0.0.1",
    port: int("port", values.port, 0) ?? 8000,
    backend,
    threads: int("threads", values.threads, 1),
    apiKey: values["api-key"] ?? process.env.PETREL_ORIGIN_API_KEY,
    batching: !values["no-batching"],
    modelId: values["model-id"],
    ctx: int("ctx", values.ctx, 1),
    kvType,
    maxRunning: int("max-running", values["max-running"], 1),
    maxBatchSeqs: int("max-batch", values["max-batch"], 1),
    tokenBudget: int("token-budget", values["token-budget"], 1),
    prefillChunk: int("prefill-chunk", values["prefill-chunk"], 1),
    maxQueue: int("max-queue", values["max-queue"], 0),
    batchWindowMs: int("batch-window-ms", values["batch-window-ms"], 0),
    kvBudgetMb: int("kv-budget-mb", values["kv-budget-mb"], 1),
    log,
  });
  process.stdout.write(`${JSON.stringify({ event: "listening", url: origin.url, port: origin.port, model: origin.modelId, batching: origin.engine.batching })}\n`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log("stopping", { signal });
    void origin.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
} catch (e) {
  process.stderr.write(`${JSON.stringify({ level: "error", component: "origin", msg: "failed to start", error: e instanceof Error ? e.message : String(e) })}\n`);
  process.exit(1);
}
