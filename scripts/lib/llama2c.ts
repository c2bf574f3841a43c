/**
 * Converts a llama2.c checkpoint (run.c's format: 7 int32 header fields, then float32 weights)
 * into a GGUF `llama` model. run.c's RoPE rotates adjacent pairs, which is llama.cpp's normal
 * RoPE for the llama architecture, so the weights need no permutation.
 */
import { writeGGUF } from "../../kernels/gguf/writer.ts";
import { GGMLType, GGUFValueType } from "../../kernels/gguf/types.ts";

export class Llama2cError extends Error {
  override name = "Llama2cError";
}

interface Llama2cConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
}

const HEADER_BYTES = 28;

function readConfig(bytes: Uint8Array): Llama2cConfig {
  if (bytes.length < HEADER_BYTES) throw new Llama2cError(`file is ${bytes.length} bytes, shorter than the 28-byte llama2.c header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = Array.from({ length: 7 }, (_, i) => view.getInt32(i * 4, true)) as [number, number, number, number, number, number, number];
  const config = { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize: Math.abs(vocab), seqLen, sharedClassifier: vocab > 0 };
  for (const [name, v] of Object.entries(config)) {
    if (typeof v === "number" && (v <= 0 || v > 1 << 20)) throw new Llama2cError(`header field ${name} = ${v} is not a plausible size`);
  }
  if (dim % nHeads !== 0 || nHeads % nKvHeads !== 0) throw new Llama2cError(`dim ${dim}, n_heads ${nHeads}, n_kv_heads ${nKvHeads} are inconsistent`);
  return config;
}

/** The synthetic vocabulary of the converted model: <unk>, <s>, </s>, 256 byte tokens, then ▁t<id>. */
function syntheticVocab(n: number): { tokens: string[]; types: Int32Array } {
  const tokens: string[] = [];
  const types = new Int32Array(n);
  for (let id = 0; id < n; id++) {
    if (id === 0) [tokens[id], types[id]] = ["<unk>", 2];
    else if (id === 1) [tokens[id], types[id]] = ["<s>", 3];
    else if (id === 2) [tokens[id], types[id]] = ["</s>", 3];
    else if (id < 259) [tokens[id], types[id]] = [`<0x${(id - 3).toString(16).toUpperCase().padStart(2, "0")}>`, 6];
    else [tokens[id], types[id]] = [`▁t${id}`, 1];
  }
  return { tokens, types };
}

export function convertLlama2c(bytes: Uint8Array, name = "llama2c"): Uint8Array {
  const c = readConfig(bytes);
  const headSize = c.dim / c.nHeads;
  const kvDim = c.nKvHeads * headSize;
  let offset = HEADER_BYTES;
  const take = (count: number, what: string): Uint8Array => {
    const n = count * 4;
    if (offset + n > bytes.length) throw new Llama2cError(`file ends at ${bytes.length} bytes while reading ${what} (needs ${offset + n})`);
    const out = bytes.slice(offset, offset + n);
    offset += n;
    return out;
  };
  // Per-layer tensors are stored layer-major for each kind: all layers' wq, then all layers' wk, …
  const perLayer = (rowsTimesCols: number, what: string) => Array.from({ length: c.nLayers }, (_, l) => take(rowsTimesCols, `${what} of layer ${l}`));

  const embd = take(c.vocabSize * c.dim, "token embeddings");
  const attnNorm = perLayer(c.dim, "rms_att_weight");
  const wq = perLayer(c.dim * c.dim, "wq");
  const wk = perLayer(c.dim * kvDim, "wk");
  const wv = perLayer(c.dim * kvDim, "wv");
  const wo = perLayer(c.dim * c.dim, "wo");
  const ffnNorm = perLayer(c.dim, "rms_ffn_weight");
  const w1 = perLayer(c.hiddenDim * c.dim, "w1");
  const w2 = perLayer(c.dim * c.hiddenDim, "w2");
  const w3 = perLayer(c.hiddenDim * c.dim, "w3");
  const finalNorm = take(c.dim, "rms_final_weight");
  take(c.seqLen * headSize, "freq_cis tables"); // run.c's precomputed RoPE tables: not needed
  const output = c.sharedClassifier ? embd : take(c.vocabSize * c.dim, "classifier");

  const f32 = (name: string, dims: number[], data: Uint8Array) => ({ name, dims, type: GGMLType.F32, bytes: data });
  const tensors = [f32("token_embd.weight", [c.dim, c.vocabSize], embd)];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      f32(`${p}attn_norm.weight`, [c.dim], attnNorm[l]!),
      f32(`${p}attn_q.weight`, [c.dim, c.dim], wq[l]!),
      f32(`${p}attn_k.weight`, [c.dim, kvDim], wk[l]!),
      f32(`${p}attn_v.weight`, [c.dim, kvDim], wv[l]!),
      f32(`${p}attn_output.weight`, [c.dim, c.dim], wo[l]!),
      f32(`${p}ffn_norm.weight`, [c.dim], ffnNorm[l]!),
      f32(`${p}ffn_gate.weight`, [c.dim, c.hiddenDim], w1[l]!),
      f32(`${p}ffn_down.weight`, [c.hiddenDim, c.dim], w2[l]!),
      f32(`${p}ffn_up.weight`, [c.dim, c.hiddenDim], w3[l]!),
    );
  }
  tensors.push(f32("output_norm.weight", [c.dim], finalNorm), f32("output.weight", [c.dim, c.vocabSize], output));

  const vocab = syntheticVocab(c.vocabSize);
  const u32 = GGUFValueType.UINT32;
  return writeGGUF({
    metadata: [
      { key: "general.architecture", value: "llama" },
      { key: "general.name", value: name },
      { key: "general.file_type", value: 0, type: u32 },
      { key: "llama.context_length", value: c.seqLen, type: u32 },
      { key: "llama.embedding_length", value: c.dim, type: u32 },
      { key: "llama.block_count", value: c.nLayers, type: u32 },
      { key: "llama.feed_forward_length", value: c.hiddenDim, type: u32 },
      { key: "llama.rope.dimension_count", value: headSize, type: u32 },
      { key: "llama.attention.head_count", value: c.nHeads, type: u32 },
      { key: "llama.attention.head_count_kv", value: c.nKvHeads, type: u32 },
      { key: "llama.attention.layer_norm_rms_epsilon", value: 1e-5, type: GGUFValueType.FLOAT32 },
      { key: "llama.rope.freq_base", value: 10000, type: GGUFValueType.FLOAT32 },
      { key: "llama.vocab_size", value: c.vocabSize, type: u32 },
      { key: "tokenizer.ggml.model", value: "llama" },
      { key: "tokenizer.ggml.tokens", value: vocab.tokens },
      { key: "tokenizer.ggml.scores", value: new Float32Array(c.vocabSize) },
      { key: "tokenizer.ggml.token_type", value: vocab.types },
      { key: "tokenizer.ggml.bos_token_id", value: 1, type: u32 },
      { key: "tokenizer.ggml.eos_token_id", value: 2, type: u32 },
      { key: "tokenizer.ggml.unknown_token_id", value: 0, type: u32 },
      { key: "tokenizer.ggml.add_bos_token", value: true },
      { key: "tokenizer.ggml.add_eos_token", value: false },
      { key: "general.alignment", value: 32, type: u32 },
    ],
    tensors,
  });
}
