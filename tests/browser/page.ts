/**
 * The browser side of the WebGPU fixture check: fetches a fixture GGUF and its reference JSON,
 * runs the fixture protocol on the WebGPU model (navigator.gpu), and compares the logits with
 * the same rule as the Node test (checkRun). Exposes `petrelRunFixture(model)` for the test.
 */
import { parseGGUF } from "../../kernels/gguf/reader.ts";
import { type Precision, type WebGpuDevice, requestWebGpuDevice } from "../../kernels/webgpu/device.ts";
import { loadWebGpuModel } from "../../kernels/webgpu/model.ts";
import { type ReferenceFile, checkRun, isQuantized } from "../helpers/parity-rule.ts";
import { runFixtureOnGpu } from "./fixture-run.ts";

export interface FixtureResult {
  model: string;
  adapter: string;
  /** First mismatch by the fixture rule, or null when every run matches. */
  mismatch: string | null;
  ms: number;
}

interface PageGlobals {
  location: { search: string };
  document: { getElementById(id: string): { textContent: string | null } | null };
  petrelRunFixture?: (model: string) => Promise<FixtureResult>;
}
const page = globalThis as unknown as PageGlobals;

const query = new URLSearchParams(page.location.search);
const precision = (query.get("precision") ?? "f32") as Precision;
let gpu: Promise<WebGpuDevice> | undefined;

function log(line: string): void {
  const el = page.document.getElementById("log");
  if (el) el.textContent += `${line}\n`;
}

async function fetchOk(url: string): Promise<Response> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status}`);
  return response;
}

async function runFixture(model: string): Promise<FixtureResult> {
  const started = performance.now();
  gpu ??= requestWebGpuDevice({ precision });
  const device = await gpu;
  const [bytes, reference] = await Promise.all([
    fetchOk(`fixtures/${model}`).then(async (r) => new Uint8Array(await r.arrayBuffer())),
    fetchOk(`fixtures/${model.replace(/\.gguf$/, ".json")}`).then((r) => r.json() as Promise<ReferenceFile>),
  ]);
  const webgpuModel = await loadWebGpuModel(parseGGUF(bytes), device);
  let mismatch: string | null = null;
  try {
    for (const [i, run] of reference.runs.entries()) {
      const out = await runFixtureOnGpu(webgpuModel, run);
      const problem = checkRun(run, out, isQuantized(model) ? "f64" : "llama", 1e-2);
      if (problem && !mismatch) mismatch = `run ${i}: ${problem}`;
    }
  } finally {
    webgpuModel.destroy();
  }
  const result = { model, adapter: device.description, mismatch, ms: Math.round(performance.now() - started) };
  log(`${model}: ${mismatch ?? "matches"} (${result.ms} ms, ${device.description})`);
  return result;
}

page.petrelRunFixture = runFixture;

// Opened by hand (e.g. on a machine with a GPU): check the fixtures named in ?models=, in order.
const requested = query.get("models")?.split(",").filter((m) => m) ?? [];
void (async () => {
  for (const model of requested) await runFixture(model).catch((e: Error) => log(`${model}: ${e.message}`));
})();
