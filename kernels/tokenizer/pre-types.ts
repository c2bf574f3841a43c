/**
 * The pre-tokenizers of byte-level BPE vocabularies, as llama.cpp knows them: the name in
 * `tokenizer.ggml.pre` selects a list of regexes (applied one after another, each splitting the
 * pieces the previous one left) and a few vocabulary flags.
 */

const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

/** GPT-2's regex; llama.cpp runs its hand-written splitter for exactly this string. */
export const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
/** Llama 3's regex (case-insensitive contractions spelled out); also a hand-written splitter. */
export const LLAMA3_REGEX = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
/** Triggers llama.cpp's hand-written Kimi-K2 splitter. */
export const KIMI_K2_REGEX = "\\p{Han}+";
/** Triggers llama.cpp's hand-written AFMoE digit splitter. */
export const AFMOE_DIGITS_REGEX = "\\p{AFMoE_digits}";
/** superbpe's and tiny_aya's lookahead regexes, run by linear equivalents here. */
export const DIGIT_TRIPLES_AHEAD_REGEX = "(?=(\\d{3})+(?!\\d))";
export const DIGIT_GROUPS_FROM_END_REGEX = "\\d{1,3}(?=(?:\\d{3})*\\b)";

const QWEN2 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const DIGIT = "\\p{N}";
const DIGITS_1_3 = "\\p{N}{1,3}";
const HAN_KANA = "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+";
const CJK_HANGUL = "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+";
const PUNCT_SPLIT = " ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+";
const NEWLINES = "[^\\n]+|[\\n]+";
const SEPARATE_UPPER_LOWER = (letterLookahead: string, suffix: string, digits: string) =>
  `[^\\r\\n\\p{L}\\p{N}]?((?=[${letterLookahead}])([^a-z]))*((?=[${letterLookahead}])([^A-Z]))+${suffix}` +
  `|[^\\r\\n\\p{L}\\p{N}]?((?=[${letterLookahead}])([^a-z]))+((?=[${letterLookahead}])([^A-Z]))*${suffix}` +
  `|${digits}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const UPPER_LOWER_CLASSES =
  `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+${CONTRACTIONS}?` +
  `|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*${CONTRACTIONS}?`;
const ASCII_PUNCT_THEN_LETTERS = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+";
const DEEPSEEK_V3_WORDS =
  `${ASCII_PUNCT_THEN_LETTERS}|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+`;
const DEEPSEEK_LLM_LETTERS =
  "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373" +
  "\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F" +
  "\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77" +
  "\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D" +
  "\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4" +
  "\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139" +
  "\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D" +
  "\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A" +
  "\uFF41-\uFF5A\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}" +
  "\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+";

/** Regex lists by llama.cpp's pre-tokenizer type. */
const REGEXES = {
  default: ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_REGEX, "\\p{N}+", "[0-9][0-9][0-9]"],
  gpt2: [GPT2_REGEX],
  llama3: [LLAMA3_REGEX],
  jais2: [
    `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+` +
      "|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)" +
      "|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}",
  ],
  "deepseek-llm": [
    "[\r\n]",
    DEEPSEEK_LLM_LETTERS,
    "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+",
    "\\s+$",
    CJK_HANGUL,
    "\\p{N}+",
  ],
  "deepseek-v3": [DIGITS_1_3, HAN_KANA, DEEPSEEK_V3_WORDS],
  spark2_5: [
    DIGITS_1_3,
    HAN_KANA,
    `${ASCII_PUNCT_THEN_LETTERS}|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+`,
    DIGIT,
  ],
  youtu: [
    "[\uAC00-\uD7A3\u3131-\u318E]+|[\uFF01\u2026\u201C\u201D\u2018\u2019\u2014\uFF1A\uFF1B\uFF0C\u3001-\u303F\uFE30-\uFE4F]+" +
      "|[\u3105-\u312F]+|[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
    `${UPPER_LOWER_CLASSES}|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  ],
  "deepseek-coder": ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK_HANGUL, DIGIT],
  falcon: ["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_REGEX, "[0-9][0-9][0-9]"],
  starcoder: [DIGIT, GPT2_REGEX],
  qwen2: [QWEN2],
  qwen35: [
    `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  ],
  poro: [PUNCT_SPLIT],
  viking: [PUNCT_SPLIT, DIGIT],
  tekken: [SEPARATE_UPPER_LOWER("\\p{L}", "", "\\p{N}")],
  chameleon: [
    "<sentinel:[0-9]+>",
    "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
    "([\\t\\n]|    |  )",
    DIGIT,
    "[\\p{P}!-/:-@\\[-`{-~]",
    GPT2_REGEX,
  ],
  "gpt-4o": [SEPARATE_UPPER_LOWER("\\p{L}", `${CONTRACTIONS}?`, DIGITS_1_3)],
  "granite-embed-multi": [SEPARATE_UPPER_LOWER("\\p{L}\\p{M}", `${CONTRACTIONS}?`, DIGITS_1_3)],
  "tiny-aya": [
    DIGIT_GROUPS_FROM_END_REGEX,
    `${UPPER_LOWER_CLASSES}|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  ],
  "kimi-k2": [KIMI_K2_REGEX],
  superbpe: ["\\p{N}+", DIGIT_TRIPLES_AHEAD_REGEX],
  bailingmoe: [
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
  ],
  "seed-coder": [
    `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  ],
  ufakzeka: ["[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
  afmoe: [
    AFMOE_DIGITS_REGEX,
    "[\u4E00-\u9FFF\u3400-\u4DBF\uF900-\uFAFF\u3040-\u309F\u30A0-\u30FF\uFF65-\uFF9F\u2F00-\u2FDF\u0E40-\u0E7F" +
      "\u0E80-\u0EFF\u1780-\u17FF\u1000-\u109F\uAA60-\uAA7F\uA9E0-\uA9FF\uAC00-\uD7AF\u1100-\u11FF]+",
    // llama.cpp spells \r\n as escapes here and as raw characters for deepseek-v3: the same regex.
    DEEPSEEK_V3_WORDS,
  ],
  laguna: [NEWLINES, QWEN2],
  "exaone-moe": [
    `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+`,
  ],
  newlines: [NEWLINES],
  minicpm5: [
    DIGITS_1_3,
    `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  ],
  whitespace: ["\\S+"],
} satisfies Record<string, readonly string[]>;

type RegexSet = keyof typeof REGEXES;

/** What a `tokenizer.ggml.pre` name sets, beyond its regexes. */
export interface PreTokenizerFlags {
  /** Undo the spacing HF's decoders add around punctuation when detokenizing (default true). */
  cleanSpaces: boolean;
  /** A pre-tokenized word that is itself a token is not merged further. */
  ignoreMerges: boolean;
  /** Default for add_bos before the metadata is read. */
  addBos: boolean;
  addSep: boolean;
  /** Spaces become ▁ before BPE and tokens are raw UTF-8 with <0xNN> byte tokens (SPM-style BPE). */
  escapeWhitespaces: boolean;
  /** The BERT-style lowercase normalizer defaults off. */
  noLowercase: boolean;
  /** The vocabulary has no BOS (ChatGLM). */
  noBos: boolean;
  /** Gemma 4: BOS is always added, and a word of newlines that is a token is used as is. */
  gemma4: boolean;
}

export interface PreTokenizerSpec extends PreTokenizerFlags {
  regexes: readonly string[];
  /** Words are mapped to GPT-2's byte-level alphabet before BPE. */
  byteEncode: boolean;
}

type Entry = [names: readonly string[], regexes: RegexSet, flags?: Partial<PreTokenizerFlags>];

const KEEP_SPACES = { cleanSpaces: false } as const;

/** llama.cpp's table of pre-tokenizer names (llama_vocab::impl::load). */
const ENTRIES: readonly Entry[] = [
  [["default"], "default"],
  [["minicpm5"], "minicpm5", { ignoreMerges: true }],
  [["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"], "llama3", { ignoreMerges: true, addBos: true }],
  [["deepseek-llm"], "deepseek-llm", KEEP_SPACES],
  [["deepseek-coder"], "deepseek-coder", KEEP_SPACES],
  [["deepseek-v3", "hunyuan-dense", "hy_v4", "joyai-llm"], "deepseek-v3", KEEP_SPACES],
  [["spark2_5"], "spark2_5", KEEP_SPACES],
  [["youtu"], "youtu", { cleanSpaces: false, ignoreMerges: true }],
  [["falcon"], "falcon"],
  [["mpt", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "exaone4", "olmo", "jais"], "gpt2"],
  [["trillion", "granite-docling"], "gpt2", KEEP_SPACES],
  [["jina-v1-en", "jina-v2-code", "roberta-bpe"], "gpt2", { addSep: true }],
  [["jais-2"], "jais2"],
  [["gemma4", "granite-embed-multi-311m"], "newlines", { escapeWhitespaces: true, gemma4: true }],
  [["sarvam-moe"], "newlines", { escapeWhitespaces: true, cleanSpaces: false }],
  [["whitespace"], "whitespace", { noLowercase: true }],
  [["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"], "starcoder"],
  [["command-r", "smollm"], "starcoder", KEEP_SPACES],
  [["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open"], "qwen2", KEEP_SPACES],
  [["megrez", "stablelm2"], "qwen2"],
  [["qwen35"], "qwen35", KEEP_SPACES],
  [["dbrx", "smaug-bpe"], "llama3"],
  [["glm4", "chatglm-bpe"], "llama3", { noBos: true }],
  [["poro-chat"], "poro", KEEP_SPACES],
  [["bloom", "gpt3-finnish"], "poro"],
  [["viking"], "viking", KEEP_SPACES],
  [["tekken"], "tekken", { cleanSpaces: false, ignoreMerges: true, addBos: true }],
  [["exaone-moe"], "exaone-moe"],
  [["chameleon"], "chameleon", { cleanSpaces: false, addBos: true }],
  [["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"], "gpt-4o", KEEP_SPACES],
  [["granite-embed-multi-97m"], "granite-embed-multi", { cleanSpaces: false, ignoreMerges: true }],
  [["tiny_aya", "cohere2moe"], "tiny-aya", KEEP_SPACES],
  [["superbpe"], "superbpe", KEEP_SPACES],
  [["bailingmoe", "bailingmoe2", "llada-moe"], "bailingmoe", KEEP_SPACES],
  [["seed-coder"], "seed-coder", KEEP_SPACES],
  [["kimi-k2"], "kimi-k2", KEEP_SPACES],
  [["ufakzeka"], "ufakzeka", KEEP_SPACES],
  [["grok-2"], "qwen2", KEEP_SPACES],
  [["afmoe"], "afmoe", KEEP_SPACES],
  [["laguna"], "laguna", KEEP_SPACES],
];

const DEFAULT_FLAGS: PreTokenizerFlags = {
  cleanSpaces: true,
  ignoreMerges: false,
  addBos: false,
  addSep: false,
  escapeWhitespaces: false,
  noLowercase: false,
  noBos: false,
  gemma4: false,
};

const BY_NAME = new Map<string, PreTokenizerSpec>();
for (const [names, set, flags] of ENTRIES) {
  const spec: PreTokenizerSpec = {
    ...DEFAULT_FLAGS,
    ...flags,
    regexes: REGEXES[set],
    byteEncode: set !== "newlines" && set !== "whitespace",
  };
  for (const name of names) BY_NAME.set(name, spec);
}

/** The pre-tokenizer for a `tokenizer.ggml.pre` value (missing means "default"); undefined if unknown. */
export function preTokenizerSpec(name: string | undefined): PreTokenizerSpec | undefined {
  return BY_NAME.get(name === undefined || name === "" ? "default" : name);
}

/** Every known pre-tokenizer name (for tests and error messages). */
export function preTokenizerNames(): string[] {
  return [...BY_NAME.keys()];
}
