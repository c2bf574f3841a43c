/**
 * A vocabulary read from GGUF metadata the way llama.cpp's llama_vocab::impl::load reads it:
 * the tokenizer model picks the algorithm and its default special ids and flags, the metadata
 * then overrides them.
 */
import type { GGUFValue } from "../gguf/types.ts";
import { Attr, ATTR_OF_TOKEN_TYPE } from "./attrs.ts";
import { TokenizerError, TokenizerMetadata } from "./metadata.ts";
import { preTokenizerSpec, type PreTokenizerSpec } from "./pre-types.ts";
import { applyTokenHeuristics } from "./special-tokens.ts";

export { Attr, TokenizerError };

export type VocabType = "spm" | "bpe" | "wpm";

/** The text of a byte-fallback token: <0x0A>, <0xFF>, … */
export function byteTokenText(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}

export interface SpecialIds {
  bos?: number;
  eos?: number;
  eot?: number;
  eom?: number;
  unk?: number;
  sep?: number;
  pad?: number;
  mask?: number;
  fimPre?: number;
  fimSuf?: number;
  fimMid?: number;
  fimPad?: number;
  fimRep?: number;
  fimSep?: number;
}

export interface Vocab {
  readonly type: VocabType;
  /** tokenizer.ggml.model */
  readonly model: string;
  /** BPE only: the pre-tokenizer. */
  readonly pre?: PreTokenizerSpec;
  readonly tokens: readonly string[];
  readonly scores: Float32Array;
  readonly attrs: Uint16Array;
  readonly tokenToId: ReadonlyMap<string, number>;
  /** BPE merge ranks keyed by "left right" (BPE symbols never contain a space). */
  readonly bpeRanks: ReadonlyMap<string, number>;
  readonly special: SpecialIds;
  /** Tokens that end generation. */
  readonly eog: ReadonlySet<number>;
  /** Control, user-defined and unknown tokens, longest (in UTF-8 bytes) first. */
  readonly specialTokens: readonly number[];
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSep: boolean;
  readonly addSpacePrefix: boolean;
  readonly cleanSpaces: boolean;
  readonly ignoreMerges: boolean;
  /** BPE only: spaces are ▁ in tokens (SPM always escapes them). */
  readonly escapeWhitespaces: boolean;
  readonly lowercase: boolean;
  readonly stripAccents: boolean;
  /** Longest token text in UTF-16 units. */
  readonly maxTokenLength: number;
}

const SPECIAL_ID_KEYS: ReadonlyArray<[keyof SpecialIds, string]> = [
  ["bos", "tokenizer.ggml.bos_token_id"],
  ["eos", "tokenizer.ggml.eos_token_id"],
  ["eot", "tokenizer.ggml.eot_token_id"],
  ["eom", "tokenizer.ggml.eom_token_id"],
  ["unk", "tokenizer.ggml.unknown_token_id"],
  ["sep", "tokenizer.ggml.seperator_token_id"],
  ["pad", "tokenizer.ggml.padding_token_id"],
  ["mask", "tokenizer.ggml.mask_token_id"],
  ["fimPre", "tokenizer.ggml.fim_pre_token_id"],
  ["fimSuf", "tokenizer.ggml.fim_suf_token_id"],
  ["fimMid", "tokenizer.ggml.fim_mid_token_id"],
  ["fimPad", "tokenizer.ggml.fim_pad_token_id"],
  ["fimRep", "tokenizer.ggml.fim_rep_token_id"],
  ["fimSep", "tokenizer.ggml.fim_sep_token_id"],
  // deprecated spellings
  ["fimPre", "tokenizer.ggml.prefix_token_id"],
  ["fimSuf", "tokenizer.ggml.suffix_token_id"],
  ["fimMid", "tokenizer.ggml.middle_token_id"],
];

interface ModelDefaults {
  type: VocabType;
  special: SpecialIds;
  needsMerges: boolean;
  /** Overrides tokenizer.ggml.pre (Gemma 4's model implies its pre-tokenizer). */
  pre?: string;
}

const MODELS: Readonly<Record<string, ModelDefaults>> = {
  llama: { type: "spm", special: { bos: 1, eos: 2, unk: 0 }, needsMerges: false },
  bert: { type: "wpm", special: { bos: 101, unk: 100, sep: 102, pad: 0, mask: 103 }, needsMerges: false },
  gpt2: { type: "bpe", special: { bos: 11, eos: 11 }, needsMerges: true },
  whitespace: { type: "bpe", special: { bos: 11, eos: 11 }, needsMerges: true },
  gemma4: { type: "bpe", special: {}, needsMerges: true, pre: "gemma4" },
};

const UNSUPPORTED_MODELS = new Set(["t5", "rwkv", "plamo2", "hybriddna"]);

function modelDefaults(model: string): ModelDefaults {
  const defaults = MODELS[model];
  if (defaults) return defaults;
  if (model === "no_vocab" || model === "none") throw new TokenizerError(`tokenizer model '${model}': the file has no vocabulary`);
  if (UNSUPPORTED_MODELS.has(model)) throw new TokenizerError(`tokenizer model '${model}' is not supported (supported: ${Object.keys(MODELS).join(", ")})`);
  throw new TokenizerError(`unknown tokenizer model '${model}'`);
}

/** Merge ranks: a merge line "a b" splits at the first space after its first character. */
function readMerges(merges: readonly string[]): Map<string, number> {
  const ranks = new Map<string, number>();
  merges.forEach((merge, rank) => {
    // Lines without a space cannot match any pair of non-empty symbols.
    if (merge.indexOf(" ", 1) >= 0 && !ranks.has(merge)) ranks.set(merge, rank);
  });
  return ranks;
}

function readTokens(meta: TokenizerMetadata): { tokens: string[]; tokenToId: Map<string, number> } {
  const raw = meta.strings("tokenizer.ggml.tokens");
  if (raw === undefined) throw new TokenizerError("no tokenizer.ggml.tokens: the file has no vocabulary");
  const tokens = raw.map((t, i) => (t === "" ? `[EMPTY_${i}]` : t));
  const tokenToId = new Map<string, number>();
  tokens.forEach((t, i) => {
    const previous = tokenToId.get(t);
    if (previous !== undefined) throw new TokenizerError(`duplicate token in vocabulary: '${t}' has ids ${previous} and ${i}`);
    tokenToId.set(t, i);
  });
  return { tokens, tokenToId };
}

/** Special ids: the model's defaults (dropped when out of range), then the metadata's. */
function readSpecialIds(meta: TokenizerMetadata, defaults: SpecialIds, nTokens: number): SpecialIds {
  const special: SpecialIds = {};
  for (const [name, id] of Object.entries(defaults) as [keyof SpecialIds, number | undefined][]) {
    if (id !== undefined && id < nTokens) special[name] = id;
  }
  for (const [name, key] of SPECIAL_ID_KEYS) {
    const id = meta.index(key);
    if (id !== undefined && id < nTokens) special[name] = id;
  }
  return special;
}

function requireSpecial(enabled: boolean, id: number | undefined, addKey: string, idKey: string): void {
  if (enabled && id === undefined) throw new TokenizerError(`${addKey} is true, but ${idKey} is not set`);
}

export function loadVocab(metadata: ReadonlyMap<string, GGUFValue>): Vocab {
  const meta = new TokenizerMetadata(metadata);
  const model = meta.string("tokenizer.ggml.model");
  if (model === undefined) throw new TokenizerError("no tokenizer.ggml.model: the file has no tokenizer");
  const defaults = modelDefaults(model);
  const preName = defaults.pre ?? meta.string("tokenizer.ggml.pre");

  let pre: PreTokenizerSpec | undefined;
  if (defaults.type === "bpe") {
    pre = preTokenizerSpec(preName);
    if (!pre) throw new TokenizerError(`unknown pre-tokenizer type '${preName}'`);
  }

  const { tokens, tokenToId } = readTokens(meta);
  const n = tokens.length;
  const scores = meta.floats("tokenizer.ggml.scores", n) ?? new Float32Array(n);
  const types = meta.ints("tokenizer.ggml.token_type", n);
  const attrs = new Uint16Array(n).fill(Attr.NORMAL);
  if (types) for (let i = 0; i < n; i++) attrs[i] = ATTR_OF_TOKEN_TYPE[types[i]!] ?? Attr.UNDEFINED;

  let bpeRanks = new Map<string, number>();
  if (defaults.needsMerges) {
    const merges = meta.strings("tokenizer.ggml.merges");
    if (merges) bpeRanks = readMerges(merges);
    else if (preName !== "kimi-k2") throw new TokenizerError("no tokenizer.ggml.merges: a BPE vocabulary needs its merges");
  }

  const special = readSpecialIds(meta, pre?.noBos ? { ...defaults.special, bos: undefined } : defaults.special, n);

  const byType = {
    spm: { addBos: true, addSep: false, addSpacePrefix: true, cleanSpaces: false },
    wpm: { addBos: true, addSep: true, addSpacePrefix: false, cleanSpaces: true },
    bpe: { addBos: pre?.addBos ?? false, addSep: pre?.addSep ?? false, addSpacePrefix: false, cleanSpaces: pre?.cleanSpaces ?? true },
  }[defaults.type];
  const addBos = (meta.bool("tokenizer.ggml.add_bos_token") ?? byType.addBos) || (pre?.gemma4 ?? false);
  const addEos = meta.bool("tokenizer.ggml.add_eos_token") ?? false;
  const addSep = meta.bool("tokenizer.ggml.add_sep_token") ?? byType.addSep;
  requireSpecial(addBos, special.bos, "tokenizer.ggml.add_bos_token", "tokenizer.ggml.bos_token_id");
  requireSpecial(addEos, special.eos, "tokenizer.ggml.add_eos_token", "tokenizer.ggml.eos_token_id");
  requireSpecial(addSep, special.sep, "tokenizer.ggml.add_sep_token", "tokenizer.ggml.seperator_token_id");

  const lowercase = meta.bool("tokenizer.ggml.normalizer.lowercase") ?? !(pre?.noLowercase ?? false);
  const heuristics = applyTokenHeuristics({ tokens, tokenToId, attrs, special, metadata: meta });

  return {
    type: defaults.type,
    model,
    pre,
    tokens,
    scores,
    attrs,
    tokenToId,
    bpeRanks,
    special,
    eog: heuristics.eog,
    specialTokens: heuristics.specialTokens,
    addBos,
    addEos,
    addSep,
    addSpacePrefix: meta.bool("tokenizer.ggml.add_space_prefix") ?? byType.addSpacePrefix,
    cleanSpaces: byType.cleanSpaces,
    ignoreMerges: pre?.ignoreMerges ?? false,
    escapeWhitespaces: pre?.escapeWhitespaces ?? false,
    lowercase,
    stripAccents: meta.bool("tokenizer.ggml.normalizer.strip_accents") ?? lowercase,
    maxTokenLength: tokens.reduce((m, t) => Math.max(m, t.length), 0),
  };
}
