/** Shared set-up of the moderation tests inside workerd: the shipped classifier in R2, tenants with a policy. */
import type { ModerationPolicyInput } from "../../kernels/moderation/index.ts";
import { CLASSIFIER_KEY } from "../../workers/moderation/index.ts";
import { api, fixtureBytes, KEY_ADMIN, testEnv } from "./helpers.ts";

/** Puts models/moderation/classifier.onnx where the worker loads it from, as `npm start` does. */
export async function uploadClassifier(): Promise<void> {
  await testEnv.MODELS.put(CLASSIFIER_KEY, await fixtureBytes("moderation/classifier.onnx"));
}

let tenants = 0;

/** A new tenant with this policy (set through the admin route) and a key of it. */
export async function tenantWithPolicy(policy: ModerationPolicyInput): Promise<string> {
  const tenant = `mod-${++tenants}-${crypto.randomUUID().slice(0, 8)}`;
  const put = await api(`/v1/admin/moderation/policies/${tenant}`, { method: "PUT", key: KEY_ADMIN, json: policy });
  if (put.status !== 200) throw new Error(`policy refused: ${await put.text()}`);
  const made = await api("/v1/admin/keys", { key: KEY_ADMIN, json: { tenant } });
  return ((await made.json()) as { key: string }).key;
}

/** A policy that checks nothing: the unmoderated baseline of a comparison. */
export const UNMODERATED: ModerationPolicyInput = { checks: { rules: false, classifier: false }, output: { enabled: false } };

/** Rules only, no PII detectors: exactly the rules a test states. */
export const NO_PII = { email: "allow", phone: "allow", card: "allow", iban: "allow", secret: "allow" } as const;

export interface ModerationErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null; categories: string[] };
}

/** The worker's and the objects' JSON log lines written while `run` runs (they share this isolate). */
export async function logLines<T>(run: () => Promise<T>): Promise<{ result: T; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => {
    for (const a of args) {
      if (typeof a !== "string") continue;
      try {
        lines.push(JSON.parse(a) as Record<string, unknown>);
      } catch {
        // not one of ours
      }
    }
    original(...args);
  };
  try {
    return { result: await run(), lines };
  } finally {
    console.log = original;
  }
}
