/**
 * The model manifest: one JSON object per model at `manifest/<id>.json` in the R2 bucket, next to
 * the GGUF at `models/<id>.gguf`. `petrel upload` writes it; `/v1/models` lists it; the
 * SessionDO reads the serving settings (context length, KV type) from it.
 */
import type { GGUFHeader } from "../kernels/gguf/types.ts";
import { typeName } from "../kernels/gguf/types.ts";
import type { KVType } from "../kernels/model/backend.ts";
import { readModelConfig } from "../kernels/model/config.ts";
import { Tokenizer } from "../kernels/tokenizer/index.ts";

export interface ModelManifest {
  id: string;
  /** R2 key of the GGUF file. */
  file: string;
  size: number;
  sha256?: string;
  architecture: string;
  /** The tensor type holding most of the weight bytes, e.g. "Q8_0". */
  quantization: string;
  parameters: number;
  /** Context length the model was trained for. */
  context_length: number;
  /** Context length the KV-cache is sized for when serving (≤ context_length). */
  n_ctx: number;
  kv_type: KVType;
  n_vocab: number;
  chat_template: boolean;
  created: number;
  source?: string;
}

export const MODEL_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export const manifestKey = (id: string) => `manifest/${id}.json`;
export const modelKey = (id: string) => `models/${id}.gguf`;

export class ManifestError extends Error {
  override name = "ManifestError";
}

/**
 * Describes a GGUF header as a manifest entry; throws (with the reason) when Petrel cannot serve
 * it: unsupported architecture, bad hyper-parameters, no usable tokenizer.
 */
export function describeModel(
  header: GGUFHeader,
  opts: { id: string; size: number; sha256?: string; nCtx?: number; kvType?: KVType; created?: number; source?: string },
): ModelManifest {
  if (!MODEL_ID_RE.test(opts.id)) throw new ManifestError(`model id '${opts.id}' must match ${MODEL_ID_RE}`);
  const config = readModelConfig(header);
  if (!header.metadata.has("tokenizer.ggml.model")) throw new ManifestError("the file has no tokenizer (tokenizer.ggml.model is missing)");
  Tokenizer.fromMetadata(header.metadata);
  const byType = new Map<number, number>();
  let parameters = 0;
  for (const t of header.tensors) {
    parameters += t.nElements;
    if (t.dims.length >= 2) byType.set(t.type, (byType.get(t.type) ?? 0) + t.nBytes);
  }
  const dominant = [...byType].sort((a, b) => b[1] - a[1])[0];
  const nCtx = opts.nCtx ?? Math.min(config.nCtxTrain, 2048);
  if (!Number.isInteger(nCtx) || nCtx < 1 || nCtx > config.nCtxTrain) {
    throw new ManifestError(`n_ctx ${nCtx} must be an integer between 1 and the model's context length ${config.nCtxTrain}`);
  }
  return {
    id: opts.id,
    file: modelKey(opts.id),
    size: opts.size,
    ...(opts.sha256 !== undefined && { sha256: opts.sha256 }),
    architecture: config.arch,
    quantization: dominant ? typeName(dominant[0]) : "unknown",
    parameters,
    context_length: config.nCtxTrain,
    n_ctx: nCtx,
    kv_type: opts.kvType ?? "f32",
    n_vocab: config.nVocab,
    chat_template: typeof header.metadata.get("tokenizer.chat_template") === "string",
    created: opts.created ?? Math.floor(Date.now() / 1000),
    ...(opts.source !== undefined && { source: opts.source }),
  };
}

/** The manifest of model `id` in the bucket; undefined for an unknown (or malformed) one. */
export async function readManifest(bucket: { get(key: string): Promise<{ json(): Promise<unknown> } | null> }, id: string): Promise<ModelManifest | undefined> {
  if (!MODEL_ID_RE.test(id)) return undefined;
  const m: unknown = await (await bucket.get(manifestKey(id)))?.json();
  return isManifest(m) && m.id === id ? m : undefined;
}

export function isManifest(v: unknown): v is ModelManifest {
  if (typeof v !== "object" || v === null) return false;
  const m = v as Record<string, unknown>;
  return typeof m.id === "string" && typeof m.file === "string" && typeof m.n_ctx === "number" && (m.kv_type === "f32" || m.kv_type === "f16");
}

/** The OpenAI model object, with Petrel's details under `petrel`. */
export function modelObject(m: ModelManifest) {
  return {
    id: m.id,
    object: "model" as const,
    created: m.created,
    owned_by: "petrel",
    petrel: {
      architecture: m.architecture,
      quantization: m.quantization,
      parameters: m.parameters,
      size: m.size,
      context_length: m.context_length,
      n_ctx: m.n_ctx,
      kv_type: m.kv_type,
      chat_template: m.chat_template,
    },
  };
}
