import type { GGUFHeader, GGUFValue } from "../gguf/types.ts";
import type { RopeParams } from "./backend.ts";

/** Architectures whose forward pass Petrel implements, and how each applies RoPE. */
const ARCHITECTURES: Record<string, { neoxRope: boolean; qkvBias: boolean }> = {
  llama: { neoxRope: false, qkvBias: false },
  qwen2: { neoxRope: true, qkvBias: true },
};

export const SUPPORTED_ARCHITECTURES = Object.keys(ARCHITECTURES);

/** Hyper-parameters of a Llama-family model, read from GGUF metadata. */
export interface ModelConfig {
  arch: string;
  nVocab: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nFf: number;
  /** Context length the model was trained for. */
  nCtxTrain: number;
  rmsEps: number;
  rope: RopeParams;
  qkvBias: boolean;
  /** The output projection reuses the token embeddings. */
  tiedOutput: boolean;
}

/** A model file that Petrel cannot run: names what is wrong. */
export class ModelConfigError extends Error {
  override name = "ModelConfigError";
}

function num(metadata: Map<string, GGUFValue>, key: string, fallback?: number): number {
  const v = metadata.get(key);
  if (v === undefined) {
    if (fallback === undefined) throw new ModelConfigError(`missing metadata key ${key}`);
    return fallback;
  }
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isFinite(n)) throw new ModelConfigError(`metadata key ${key} must be a number`);
  return n;
}

function positiveInt(metadata: Map<string, GGUFValue>, key: string, fallback?: number): number {
  const n = num(metadata, key, fallback);
  if (!Number.isInteger(n) || n <= 0) throw new ModelConfigError(`metadata key ${key} must be a positive integer, got ${n}`);
  return n;
}

/** Reads and checks the hyper-parameters; tensor shapes are checked when weights load. */
export function readModelConfig(header: GGUFHeader): ModelConfig {
  const { metadata } = header;
  const arch = metadata.get("general.architecture");
  if (typeof arch !== "string") throw new ModelConfigError("missing metadata key general.architecture");
  const traits = ARCHITECTURES[arch];
  if (!traits) {
    throw new ModelConfigError(`unsupported architecture '${arch}' (supported: ${SUPPORTED_ARCHITECTURES.join(", ")})`);
  }
  const key = (k: string) => `${arch}.${k}`;

  const nEmbd = positiveInt(metadata, key("embedding_length"));
  const nHead = positiveInt(metadata, key("attention.head_count"));
  const nHeadKv = positiveInt(metadata, key("attention.head_count_kv"), nHead);
  if (nHead % nHeadKv !== 0) throw new ModelConfigError(`head_count ${nHead} is not a multiple of head_count_kv ${nHeadKv}`);
  const headDim = positiveInt(metadata, key("attention.key_length"), nEmbd / nHead);
  const ropeDims = positiveInt(metadata, key("rope.dimension_count"), headDim);
  if (ropeDims > headDim || ropeDims % 2 !== 0) throw new ModelConfigError(`rope.dimension_count ${ropeDims} must be even and ≤ head size ${headDim}`);

  const embd = header.tensors.find((t) => t.name === "token_embd.weight");
  if (!embd) throw new ModelConfigError("missing tensor token_embd.weight");
  const tokens = metadata.get("tokenizer.ggml.tokens");
  const nVocab = positiveInt(metadata, key("vocab_size"), Array.isArray(tokens) ? tokens.length : embd.dims[1]);

  return {
    arch,
    nVocab,
    nEmbd,
    nLayer: positiveInt(metadata, key("block_count")),
    nHead,
    nHeadKv,
    headDim,
    nFf: positiveInt(metadata, key("feed_forward_length")),
    nCtxTrain: positiveInt(metadata, key("context_length"), 2048),
    rmsEps: num(metadata, key("attention.layer_norm_rms_epsilon"), 1e-5),
    rope: {
      nDims: ropeDims,
      freqBase: num(metadata, key("rope.freq_base"), 10000),
      freqScale: ropeFreqScale(metadata, arch),
      neox: traits.neoxRope,
    },
    qkvBias: traits.qkvBias,
    tiedOutput: !header.tensors.some((t) => t.name === "output.weight"),
  };
}

/** Linear RoPE scaling: positions are divided by the scaling factor (llama.cpp's freq_scale = 1/factor). */
function ropeFreqScale(metadata: Map<string, GGUFValue>, arch: string): number {
  const type = metadata.get(`${arch}.rope.scaling.type`);
  if (type !== undefined && type !== "none" && type !== "linear") {
    throw new ModelConfigError(`unsupported rope.scaling.type '${String(type)}' (supported: none, linear)`);
  }
  if (type === "none") return 1;
  const factor = num(metadata, `${arch}.rope.scaling.factor`, num(metadata, `${arch}.rope.scale_linear`, 1));
  if (!(factor > 0)) throw new ModelConfigError(`rope.scaling.factor must be positive, got ${factor}`);
  return 1 / factor;
}
