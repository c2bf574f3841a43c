/**
 * llama.cpp's text-based rules for special tokens, applied after the metadata is read: which
 * tokens end generation, which FIM/EOT ids a converter forgot to write, which tokens strip
 * whitespace around them, and the list of tokens that are cut out of the text before
 * tokenizing. Where llama.cpp's choice depends on a hash map's order (several candidate texts
 * for one missing id), the first text in the list wins.
 */
import { Attr } from "./attrs.ts";
import type { TokenizerMetadata } from "./metadata.ts";
import { utf8Length } from "./unicode.ts";
import type { SpecialIds } from "./vocab.ts";

const { UNKNOWN, UNUSED, NORMAL, CONTROL, USER_DEFINED, LSTRIP, RSTRIP } = Attr;

/** Ids a converter may leave out, recognized by their text; the token becomes a control token. */
const DETECTED_IDS: ReadonlyArray<[keyof SpecialIds, readonly string[]]> = [
  ["eot", ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"]],
  ["eom", ["<|eom_id|>"]],
  ["fimPre", ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"]],
  ["fimSuf", ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"]],
  ["fimMid", ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"]],
  ["fimPad", ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]],
  ["fimRep", ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]],
  ["fimSep", ["<|file_sep|>"]],
];

/** Texts of tokens that end generation. */
const EOG_TEXTS = new Set([
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
  "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
  "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
]);

/** gpt-oss: always rendered, never treated as control. */
const ALWAYS_RENDERED = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

export interface TokenTables {
  readonly tokens: readonly string[];
  readonly tokenToId: ReadonlyMap<string, number>;
  readonly attrs: Uint16Array;
  readonly special: SpecialIds;
  readonly metadata: TokenizerMetadata;
}

export interface TokenHeuristics {
  eog: Set<number>;
  specialTokens: number[];
}

function detectMissingIds({ tokenToId, attrs, special }: TokenTables): void {
  for (const [name, texts] of DETECTED_IDS) {
    if (special[name] !== undefined) continue;
    const id = texts.map((t) => tokenToId.get(t)).find((i) => i !== undefined);
    if (id !== undefined) {
      special[name] = id;
      attrs[id]! |= CONTROL;
    }
  }
}

function markUnused({ tokens, attrs }: TokenTables): void {
  tokens.forEach((t, id) => {
    if (attrs[id]! & CONTROL && t.includes("unused")) attrs[id]! |= UNUSED;
  });
}

function endOfGeneration({ tokens, tokenToId, attrs, special }: TokenTables): Set<number> {
  const eog = new Set<number>();
  for (const id of [special.fimPad, special.fimRep, special.fimSep]) if (id !== undefined) eog.add(id);
  tokens.forEach((t, id) => {
    if (EOG_TEXTS.has(t)) {
      eog.add(id);
      attrs[id]! |= CONTROL;
    }
  });
  for (const t of ALWAYS_RENDERED) {
    const id = tokenToId.get(t);
    if (id !== undefined) attrs[id] = USER_DEFINED;
  }
  for (const id of [special.eos, special.eot, special.eom]) if (id !== undefined) eog.add(id);

  const eogText = (t: string): number | undefined => {
    const id = tokenToId.get(t);
    return id !== undefined && eog.has(id) ? id : undefined;
  };
  // o200k_harmony and solar-open: "<|end|>" ends a message, not the generation.
  const end = eogText("<|end|>");
  const hasCall = eogText("<|call|>") !== undefined || eogText("<|calls|>") !== undefined;
  if (end !== undefined && hasCall && (eogText("<|return|>") !== undefined || eogText("<|flush|>") !== undefined)) {
    eog.delete(end);
    attrs[end] = USER_DEFINED;
  }
  // Gemma 4 and PaddleOCR: "</s>" is ordinary text.
  const closeS = eogText("</s>");
  if (closeS !== undefined && eogText("<|tool_response>") !== undefined) {
    eog.delete(closeS);
    attrs[closeS] = NORMAL;
  }
  return eog;
}

/** Tokens cut out of the text before tokenizing, longest UTF-8 text first, then by id. */
function specialTokenList({ tokens, attrs }: TokenTables): number[] {
  const ids: number[] = [];
  attrs.forEach((a, id) => {
    if (a & (CONTROL | USER_DEFINED | UNKNOWN)) ids.push(id);
  });
  const bytes = new Map(ids.map((id) => [id, utf8Length(tokens[id]!)]));
  return ids.sort((a, b) => bytes.get(b)! - bytes.get(a)! || a - b);
}

/** Model-specific whitespace stripping around special tokens (lstrip/rstrip attributes). */
function stripAttributes({ tokenToId, attrs, metadata }: TokenTables, specialTokens: readonly number[]): void {
  const name = (metadata.string("general.name") ?? "").replace(/[A-Z]/g, (c) => c.toLowerCase());
  const pre = metadata.string("tokenizer.ggml.pre") ?? "";
  const arch = metadata.string("general.architecture") ?? "";
  const set = (text: string, attr: number, on: boolean) => {
    const id = tokenToId.get(text);
    if (id !== undefined) attrs[id] = on ? attrs[id]! | attr : attrs[id]! & ~attr;
  };
  const containsAny = (s: string, parts: readonly string[]) => parts.some((p) => s.includes(p));
  if (containsAny(pre, ["jina-v2-de", "jina-v2-es", "jina-v2-code"]) || containsAny(arch, ["nomic-bert-moe", "jina-bert-v3"])) {
    set("<mask>", LSTRIP, true);
  } else if (containsAny(name, ["phi-3", "phi3"])) {
    for (const id of specialTokens) attrs[id]! |= RSTRIP;
    set("</s>", RSTRIP, true);
    for (const t of ["<unk>", "<s>", "<|endoftext|>"]) set(t, RSTRIP, false);
  } else if (name.includes("modern-bert")) {
    set("[MASK]", LSTRIP, true);
  }
}

/** Applies llama.cpp's rules in its order; updates `attrs` and `special` in place. */
export function applyTokenHeuristics(tables: TokenTables): TokenHeuristics {
  detectMissingIds(tables);
  markUnused(tables);
  const eog = endOfGeneration(tables);
  const specialTokens = specialTokenList(tables);
  stripAttributes(tables, specialTokens);
  return { eog, specialTokens };
}
