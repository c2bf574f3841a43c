/**
 * Synthetic models with deterministic weights: the same shape, type and seed always give the same
 * bytes. Tests and benchmarks use them because no weights can be downloaded here.
 */
import type { GGUFFile } from "../../kernels/gguf/reader.ts";
import { GGMLType, GGUFValueType, TYPE_LAYOUT, type GGUFValue } from "../../kernels/gguf/types.ts";
import { writeGGUF } from "../../kernels/gguf/writer.ts";
import { quantize } from "../../kernels/quant/quantize.ts";

export interface SynthSpec {
  arch: "llama" | "qwen2";
  nEmbd: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  /** Tensor type of the layer matrices. */
  type: GGMLType;
  /** Tensor types of the token embeddings and output (default: `type`, or Q8_0 where rows don't fit K-quant blocks). */
  embdType?: GGMLType;
  outputType?: GGMLType;
  /** A vocabulary to copy (all tokenizer.* metadata), or a synthetic one of this many tokens. */
  vocab: GGUFFile | number;
  nCtx?: number;
  seed: number;
  tiedOutput?: boolean;
}

export class SynthError extends Error {
  override name = "SynthError";
}

/** mulberry32: a tiny seeded PRNG; Box–Muller turns it into normal deviates. */
function normalSource(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

const SUPPORTED_TYPES = [GGMLType.F32, GGMLType.F16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q6_K];

function vocabMetadata(vocab: GGUFFile | number): { entries: { key: string; value: GGUFValue; type?: GGUFValueType }[]; nVocab: number } {
  if (typeof vocab !== "number") {
    const entries = [...vocab.metadata].filter(([k]) => k.startsWith("tokenizer.")).map(([key, value]) => ({ key, value, type: vocab.metadataTypes.get(key) }));
    const tokens = vocab.metadata.get("tokenizer.ggml.tokens");
    if (!Array.isArray(tokens)) throw new SynthError("the vocabulary file has no tokenizer.ggml.tokens");
    return { entries, nVocab: tokens.length };
  }
  if (!Number.isInteger(vocab) || vocab < 260) throw new SynthError(`--vocab must be an integer ≥ 260 (3 control + 256 byte tokens + 1), got ${vocab}`);
  // SentencePiece-style: <unk>, <s>, </s>, 256 byte-fallback tokens, then single-character pieces.
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types = new Int32Array(vocab);
  types.set([2, 3, 3]);
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types[3 + b] = 6;
  }
  const scores = new Float32Array(vocab);
  for (let id = 259, cp = 0x21; id < vocab; id++, cp++) {
    if (cp === 0xd800) cp = 0xe000; // surrogates are not characters
    tokens.push(id === 259 ? "▁" : String.fromCodePoint(cp));
    types[id] = 1;
    scores[id] = -(id - 259);
  }
  return {
    nVocab: vocab,
    entries: [
      { key: "tokenizer.ggml.model", value: "llama" },
      { key: "tokenizer.ggml.tokens", value: tokens },
      { key: "tokenizer.ggml.scores", value: scores },
      { key: "tokenizer.ggml.token_type", value: types },
      { key: "tokenizer.ggml.bos_token_id", value: 1, type: GGUFValueType.UINT32 },
      { key: "tokenizer.ggml.eos_token_id", value: 2, type: GGUFValueType.UINT32 },
      { key: "tokenizer.ggml.unknown_token_id", value: 0, type: GGUFValueType.UINT32 },
      { key: "tokenizer.ggml.add_bos_token", value: true },
    ],
  };
}

/** The largest-block type that divides `cols`: K-quants need rows of 256, the rest of 32. */
function fitType(type: GGMLType, cols: number): GGMLType {
  return cols % TYPE_LAYOUT[type]!.blockSize === 0 ? type : GGMLType.Q8_0;
}

export function synthesize(spec: SynthSpec): Uint8Array {
  const { arch, nEmbd, nLayer, nHead, nHeadKv, nFf } = spec;
  for (const [name, v] of Object.entries({ embd: nEmbd, layers: nLayer, heads: nHead, "kv-heads": nHeadKv, ff: nFf })) {
    if (!Number.isInteger(v) || v <= 0) throw new SynthError(`--${name} must be a positive integer, got ${v}`);
  }
  if (nEmbd % nHead !== 0) throw new SynthError(`--embd ${nEmbd} must be a multiple of --heads ${nHead}`);
  if (nHead % nHeadKv !== 0) throw new SynthError(`--heads ${nHead} must be a multiple of --kv-heads ${nHeadKv}`);
  if (!SUPPORTED_TYPES.includes(spec.type)) throw new SynthError(`unsupported --type ${TYPE_LAYOUT[spec.type]?.name ?? spec.type}`);
  const headDim = nEmbd / nHead;
  if (headDim % 2 !== 0) throw new SynthError(`head size ${headDim} must be even for RoPE`);
  const kvDim = nHeadKv * headDim;
  const vocab = vocabMetadata(spec.vocab);
  const normal = normalSource(spec.seed);

  const tensors: { name: string; dims: number[]; type: GGMLType; bytes: Uint8Array }[] = [];
  const matrix = (name: string, cols: number, rows: number, type: GGMLType, std: number) => {
    const data = new Float32Array(cols * rows);
    for (let i = 0; i < data.length; i++) data[i] = normal() * std;
    const t = fitType(type, cols);
    tensors.push({ name, dims: [cols, rows], type: t, bytes: quantize(t, data) });
  };
  const vector = (name: string, n: number, make: () => number) => {
    const data = Float32Array.from({ length: n }, make);
    tensors.push({ name, dims: [n], type: GGMLType.F32, bytes: new Uint8Array(data.buffer) });
  };
  const nearOne = () => 1 + 0.05 * normal();

  // Scales keep activations of order one through the layers, so logits are neither flat nor saturated.
  matrix("token_embd.weight", nEmbd, vocab.nVocab, spec.embdType ?? spec.type, 1);
  for (let l = 0; l < nLayer; l++) {
    const p = `blk.${l}.`;
    vector(`${p}attn_norm.weight`, nEmbd, nearOne);
    matrix(`${p}attn_q.weight`, nEmbd, nEmbd, spec.type, 1 / Math.sqrt(nEmbd));
    matrix(`${p}attn_k.weight`, nEmbd, kvDim, spec.type, 1 / Math.sqrt(nEmbd));
    matrix(`${p}attn_v.weight`, nEmbd, kvDim, spec.type, 1 / Math.sqrt(nEmbd));
    if (arch === "qwen2") {
      vector(`${p}attn_q.bias`, nEmbd, () => 0.1 * normal());
      vector(`${p}attn_k.bias`, kvDim, () => 0.1 * normal());
      vector(`${p}attn_v.bias`, kvDim, () => 0.1 * normal());
    }
    matrix(`${p}attn_output.weight`, nEmbd, nEmbd, spec.type, 0.5 / Math.sqrt(nEmbd));
    vector(`${p}ffn_norm.weight`, nEmbd, nearOne);
    matrix(`${p}ffn_gate.weight`, nEmbd, nFf, spec.type, 1 / Math.sqrt(nEmbd));
    matrix(`${p}ffn_up.weight`, nEmbd, nFf, spec.type, 1 / Math.sqrt(nEmbd));
    matrix(`${p}ffn_down.weight`, nFf, nEmbd, spec.type, 0.5 / Math.sqrt(nFf));
  }
  vector("output_norm.weight", nEmbd, nearOne);
  if (!spec.tiedOutput) matrix("output.weight", nEmbd, vocab.nVocab, spec.outputType ?? spec.type, 2 / Math.sqrt(nEmbd));

  const u32 = GGUFValueType.UINT32;
  return writeGGUF({
    metadata: [
      { key: "general.architecture", value: arch },
      { key: "general.name", value: `petrel-synth-${arch}-${nEmbd}x${nLayer}` },
      { key: `${arch}.context_length`, value: spec.nCtx ?? 2048, type: u32 },
      { key: `${arch}.embedding_length`, value: nEmbd, type: u32 },
      { key: `${arch}.block_count`, value: nLayer, type: u32 },
      { key: `${arch}.feed_forward_length`, value: nFf, type: u32 },
      { key: `${arch}.attention.head_count`, value: nHead, type: u32 },
      { key: `${arch}.attention.head_count_kv`, value: nHeadKv, type: u32 },
      { key: `${arch}.attention.layer_norm_rms_epsilon`, value: 1e-5, type: GGUFValueType.FLOAT32 },
      { key: `${arch}.rope.freq_base`, value: arch === "qwen2" ? 1e6 : 1e4, type: GGUFValueType.FLOAT32 },
      { key: `${arch}.rope.dimension_count`, value: headDim, type: u32 },
      ...vocab.entries,
    ],
    tensors,
  });
}
