/**
 * What moderation adds to a request through the real worker: `wrangler dev` started as `npm start`
 * starts it (onnxruntime-web bundled, the classifier in local R2), a small model uploaded, and the
 * same one-token chat request timed under three tenants' policies — nothing checked, rules only,
 * rules + classifier (input check and output guard) — interleaved so drift hits them alike.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, uploadModel } from "../cli/upload.ts";
import { startWorker } from "../origin/spawn-worker.ts";

const ADMIN = "sk-petrel-admin-local";
const MODEL_FILE = join(ROOT, "tests/fixtures/reference/llama-Q8_0.gguf");

export const WORKER_POLICIES = {
  none: { checks: { rules: false, classifier: false }, output: { enabled: false } },
  rulesOnly: { checks: { rules: true, classifier: false } },
  rulesClassifier: {},
} as const;

export type WorkerSamples = Record<keyof typeof WORKER_POLICIES, number[]>;

export async function measureWorkerLatency(runs: number): Promise<WorkerSamples> {
  const state = mkdtempSync(join(tmpdir(), "petrel-bench-moderation-"));
  const worker = await startWorker({ state });
  try {
    await uploadModel(MODEL_FILE, new Uint8Array(readFileSync(MODEL_FILE)), { id: "bench-model", persistTo: state });
    const admin = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
    const keys = {} as Record<keyof typeof WORKER_POLICIES, string>;
    for (const [name, policy] of Object.entries(WORKER_POLICIES) as [keyof typeof WORKER_POLICIES, object][]) {
      const tenant = `bench-${name}`;
      await fetch(`${worker.url}/v1/admin/moderation/policies/${tenant}`, { method: "PUT", headers: admin, body: JSON.stringify(policy) });
      const made = await fetch(`${worker.url}/v1/admin/keys`, { method: "POST", headers: admin, body: JSON.stringify({ tenant, rpm: 100_000 }) });
      keys[name] = ((await made.json()) as { key: string }).key;
    }
    const body = JSON.stringify({ model: "bench-model", messages: [{ role: "user", content: "Hello! Could you tell me where puffins nest in summer?" }], max_tokens: 1, temperature: 0 });
    const once = async (key: string): Promise<number> => {
      const t0 = performance.now();
      const res = await fetch(`${worker.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`bench request: HTTP ${res.status}`);
      return performance.now() - t0;
    };
    const samples: WorkerSamples = { none: [], rulesOnly: [], rulesClassifier: [] };
    for (let i = 0; i < 5; i++) for (const name of Object.keys(keys) as (keyof WorkerSamples)[]) await once(keys[name]); // warm: model, ORT, caches
    for (let i = 0; i < runs; i++) for (const name of Object.keys(keys) as (keyof WorkerSamples)[]) samples[name].push(await once(keys[name]));
    return samples;
  } finally {
    await worker.stop();
    rmSync(state, { recursive: true, force: true });
  }
}
