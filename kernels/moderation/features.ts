/**
 * The moderation featurizer: text → hashed word and character n-gram features.
 *
 * It is the single definition shared by training (scripts/moderation/train.ts) and inference
 * (the ONNX classifier's input), so a model is only valid together with the `FeaturizerSpec`
 * stored in its metadata. Everything here is deterministic and platform-neutral.
 *
 * Algorithm (version 1):
 *  1. normalize: NFKD, drop combining marks, lower-case; inside a word, the look-alike symbols
 *     0 1 3 4 5 7 @ $ next to a letter become o i e a s t a s ("k1ll" → "kill"); runs of three or
 *     more equal characters shrink to two ("sooooo" → "soo"); apostrophes inside words vanish.
 *  2. tokens: maximal runs of letters and digits, cut to `maxTokenChars`.
 *  3. features: word unigrams "w\u0001tok", word bigrams "b\u0001t1\u0001t2" (when wordNgramMax ≥ 2),
 *     and character n-grams "c\u0001g" of each token padded as "<tok>", for n in
 *     [charNgramMin, charNgramMax] (a token shorter than n contributes its whole padded form once).
 *  4. hashing: h = fmix32(FNV-1a-32 over the UTF-16 code units of the feature string, offset
 *     basis xor seed); index = h mod dim; when `signed`, the sign is + if bit 0 of fmix32(h xor
 *     0x9e3779b9) is 0, else −.
 *  5. values: per index, the signed sum of group weights (word 1, bigram `bigramWeight`, char
 *     `charWeight`); then v → sign(v)·log(1 + |v|); then the vector is scaled to unit L2 norm
 *     (an empty text gives the zero vector).
 */

export interface FeaturizerSpec {
  name: "petrel-hashed-ngrams";
  version: 1;
  dim: number;
  seed: number;
  wordNgramMax: 1 | 2;
  charNgramMin: number;
  charNgramMax: number;
  bigramWeight: number;
  charWeight: number;
  signed: boolean;
  /** "l2": scale to unit L2 norm; "none": leave the log-scaled values as they are */
  norm: "l2" | "none";
  /** tokens longer than this are cut to it (base64 blobs, long numbers) */
  maxTokenChars: number;
}

export const DEFAULT_FEATURIZER: FeaturizerSpec = {
  name: "petrel-hashed-ngrams",
  version: 1,
  dim: 8192,
  seed: 0x5eed,
  wordNgramMax: 2,
  charNgramMin: 3,
  charNgramMax: 5,
  bigramWeight: 1,
  charWeight: 0.5,
  signed: true,
  norm: "l2",
  maxTokenChars: 32,
};

export interface SparseFeatures {
  /** ascending, distinct */
  indices: Int32Array;
  values: Float32Array;
}

const LETTER = /^\p{L}$/u;
const LEET: Record<string, string> = { "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", $: "s" };

export function normalizeText(text: string): string {
  let t = text.normalize("NFKD").replace(/\p{M}+/gu, "").toLowerCase();
  // look-alike symbols touching a letter on either side, inside a word
  // maximal runs of look-alike symbols with a letter right before or after (linear: no lookaround backtracking)
  t = t.replace(/[013457@$]+/g, (m: string, offset: number, whole: string) => {
    const prev = offset > 0 ? whole.charCodeAt(offset - 1) : 0;
    const before = prev >= 0xdc00 && prev <= 0xdfff && offset > 1 ? whole.slice(offset - 2, offset) : offset > 0 ? whole[offset - 1]! : "";
    const next = whole.codePointAt(offset + m.length);
    const after = next === undefined ? "" : String.fromCodePoint(next);
    if (!LETTER.test(before) && !LETTER.test(after)) return m;
    let out = "";
    for (const ch of m) out += LEET[ch] ?? ch;
    return out;
  });
  t = t.replace(/(.)\1{2,}/gu, "$1$1");
  t = t.replace(/(?<=\p{L})['’](?=\p{L})/gu, "");
  return t;
}

export function tokenize(text: string, maxTokenChars = Infinity): string[] {
  const tokens = normalizeText(text).match(/[\p{L}\p{N}]+/gu) ?? [];
  return maxTokenChars === Infinity ? tokens : tokens.map((t) => (t.length > maxTokenChars ? t.slice(0, maxTokenChars) : t));
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function hashString(s: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h >>> 0);
}

/** Features of one text as a sparse vector (see the module comment for the exact recipe). */
export function featurizeSparse(text: string, spec: FeaturizerSpec = DEFAULT_FEATURIZER): SparseFeatures {
  const acc = new Map<number, number>();
  const add = (feature: string, weight: number) => {
    const h = hashString(feature, spec.seed);
    const index = h % spec.dim;
    const sign = spec.signed && (fmix32((h ^ 0x9e3779b9) >>> 0) & 1) === 1 ? -1 : 1;
    acc.set(index, (acc.get(index) ?? 0) + sign * weight);
  };
  const tokens = tokenize(text, spec.maxTokenChars ?? Infinity);
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    add(`w\u0001${tok}`, 1);
    if (spec.wordNgramMax >= 2 && i + 1 < tokens.length) add(`b\u0001${tok}\u0001${tokens[i + 1]}`, spec.bigramWeight);
    if (spec.charWeight > 0) {
      const padded = `<${tok}>`;
      for (let n = spec.charNgramMin; n <= spec.charNgramMax; n++) {
        if (padded.length < n) {
          if (n === spec.charNgramMin) add(`c\u0001${padded}`, spec.charWeight);
          break;
        }
        for (let j = 0; j + n <= padded.length; j++) add(`c\u0001${padded.slice(j, j + n)}`, spec.charWeight);
      }
    }
  }
  const indices = Int32Array.from([...acc.keys()].sort((a, b) => a - b));
  const values = new Float32Array(indices.length);
  let norm = 0;
  for (let k = 0; k < indices.length; k++) {
    const v = acc.get(indices[k]!)!;
    const s = Math.sign(v) * Math.log1p(Math.abs(v));
    values[k] = s;
    norm += s * s;
  }
  if (norm > 0 && spec.norm !== "none") {
    const inv = 1 / Math.sqrt(norm);
    for (let k = 0; k < values.length; k++) values[k]! *= inv;
  }
  return { indices, values };
}

/** Dense features for a batch of texts: row-major float32 [texts.length, spec.dim] (the model input). */
export function featurizeBatch(texts: readonly string[], spec: FeaturizerSpec = DEFAULT_FEATURIZER): Float32Array {
  const out = new Float32Array(texts.length * spec.dim);
  texts.forEach((t, row) => {
    const { indices, values } = featurizeSparse(t, spec);
    const base = row * spec.dim;
    for (let k = 0; k < indices.length; k++) out[base + indices[k]!] = values[k]!;
  });
  return out;
}

/**
 * Split a long text into overlapping windows at whitespace, so that one harmful sentence in
 * a long benign text is not diluted by the L2 normalization; the caller takes the max score.
 * Returns [start, end) offsets; consecutive windows overlap by about half a window.
 */
export function chunkSpans(text: string, chunkChars: number): [number, number][] {
  if (text.length <= chunkChars) return [[0, text.length]];
  const out: [number, number][] = [];
  const stride = Math.max(1, Math.floor(chunkChars / 2));
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + chunkChars);
    if (end < text.length) {
      // the last space in the window's second half (bounded search: linear overall)
      for (let i = end; i > start + stride / 2; i--) {
        if (text.charCodeAt(i) === 32) {
          end = i;
          break;
        }
      }
    }
    out.push([start, end]);
    if (end >= text.length) break;
    let next = start + stride;
    for (let i = next; i < end; i++) {
      if (text.charCodeAt(i) === 32) {
        next = i + 1;
        break;
      }
    }
    start = Math.max(next, start + 1);
  }
  return out;
}

export function chunkText(text: string, chunkChars: number): string[] {
  return chunkSpans(text, chunkChars).map(([a, b]) => text.slice(a, b));
}

/**
 * The spans the classifier scores for one text (the caller takes the max score per category):
 * the whole text, or overlapping windows of it when longer than `chunkChars`; plus, when the
 * text has several sentences, each sentence of at least three words and 16 characters on its
 * own (long sentences in windows). Sentences
 * match what the model was trained on — short messages — so one harmful sentence inside a long
 * benign text is not diluted by the rest.
 */
export function scoringSpans(text: string, chunkChars: number): [number, number][] {
  const out: [number, number][] = [...chunkSpans(text, chunkChars)];
  const sentences: [number, number][] = [];
  const re = /[^.!?…\n]*(?:[.!?…]+|\n|$)/gu;
  for (const m of text.matchAll(re)) {
    if (m[0].length === 0) continue;
    let a = m.index!;
    let b = a + m[0].length;
    while (a < b && /\s/.test(text[a]!)) a++;
    while (b > a && /\s/.test(text[b - 1]!)) b--;
    // fragments ("Sure!", "Ok.") carry too little text to score on their own
    if (b - a >= 16 && text.slice(a, b).split(/\s+/, 3).length >= 3) sentences.push([a, b]);
  }
  if (sentences.length > 1) {
    for (const [a, b] of sentences) {
      if (b - a <= chunkChars) out.push([a, b]);
      else for (const [x, y] of chunkSpans(text.slice(a, b), chunkChars)) out.push([a + x, a + y]);
    }
  }
  const seen = new Set<string>();
  return out.filter(([a, b]) => {
    const k = `${a}:${b}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
