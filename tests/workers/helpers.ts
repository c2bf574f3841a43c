/** Shared helpers of the workerd integration tests. */
import { SELF } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { parseGGUF } from "../../kernels/gguf/reader.ts";
import type { KVType } from "../../kernels/model/backend.ts";
import type { Env } from "../../workers/env.ts";
import { describeModel, manifestKey, modelKey, type ModelManifest } from "../../workers/manifest.ts";

export const KEY_A = "sk-test-a";
export const KEY_B = "sk-test-b";
export const KEY_LIMITED = "sk-test-limited";
export const KEY_TOKENS = "sk-test-tokens";
export const KEY_ADMIN = "sk-test-admin";
export const KEY_REVOKE = "sk-test-revoke";

export const testEnv = env as unknown as Env & { FIXTURES: Fetcher };

/** A request to the worker (the `main` of wrangler.toml) as a client would send it. */
export function api(path: string, init: RequestInit & { key?: string | null; json?: unknown } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const key = init.key === undefined ? KEY_A : init.key;
  if (key !== null) headers.set("authorization", `Bearer ${key}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("content-type", "application/json");
    body = JSON.stringify(init.json);
  }
  return SELF.fetch(`https://petrel.test${path}`, { ...init, headers, body, method: init.method ?? (body !== undefined ? "POST" : "GET") });
}

export async function fixtureBytes(path: string): Promise<Uint8Array> {
  const res = await testEnv.FIXTURES.fetch(`https://fixtures/${path}`);
  if (!res.ok) throw new Error(`fixture ${path}: ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Puts a model into the bucket the way `petrel upload` does: the GGUF and its manifest entry. */
export async function uploadModel(id: string, path: string, opts: { nCtx?: number; kvType?: KVType } = {}): Promise<ModelManifest> {
  const bytes = await fixtureBytes(path);
  const manifest = describeModel(parseGGUF(bytes), { id, size: bytes.length, ...opts });
  await testEnv.MODELS.put(modelKey(id), bytes);
  await testEnv.MODELS.put(manifestKey(id), JSON.stringify(manifest));
  return manifest;
}

/** The `data:` payloads of an SSE body, in order (the final "[DONE]" included as a string). */
export async function sseEvents(res: Response): Promise<unknown[]> {
  const text = await res.text();
  return parseSse(text);
}

export function parseSse(text: string): unknown[] {
  const out: unknown[] = [];
  for (const block of text.split("\n\n")) {
    const line = block.split("\n").find((l) => l.startsWith("data: "));
    if (!line) continue;
    const data = line.slice("data: ".length);
    out.push(data === "[DONE]" ? data : JSON.parse(data));
  }
  return out;
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}
