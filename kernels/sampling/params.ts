/**
 * Sampling parameters: what a request may set, the neutral value each takes when unset, and
 * validation that names the offending parameter. Unset means "off" for every filter and penalty,
 * and temperature 1 (OpenAI's default) — a server wanting llama.cpp's defaults
 * (top_k 40, top_p 0.95, min_p 0.05, temperature 0.8) passes them explicitly.
 */

export type LogitBias = ReadonlyMap<number, number> | Readonly<Record<number, number>>;

export interface SamplingParams {
  /** ≥ 0; 0 picks the most likely token (after bias and penalties). Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p, in (0, 1]; 1 = off. */
  topP?: number;
  /** Drop tokens less likely than minP × the most likely one's probability, in [0, 1]; 0 = off. */
  minP?: number;
  /** > 0; llama.cpp semantics: positive logits are divided by it, others multiplied; 1 = off. */
  repeatPenalty?: number;
  /** OpenAI semantics: logit −= count × frequencyPenalty; 0 = off. */
  frequencyPenalty?: number;
  /** OpenAI semantics: logit −= presencePenalty for any token that occurred; 0 = off. */
  presencePenalty?: number;
  /** How many of the most recent history tokens the penalties look at; −1 = all, 0 = none. Default 64 (llama.cpp's). */
  penaltyLastN?: number;
  /** Token id → value added to its logit; −Infinity bans the token. */
  logitBias?: LogitBias;
  /** Seed for the random generator; a random one when unset. Any safe integer. */
  seed?: number;
}

export interface ResolvedParams {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  frequencyPenalty: number;
  presencePenalty: number;
  penaltyLastN: number;
  /** Parallel arrays, validated against the vocabulary. */
  biasIds: Int32Array;
  biasValues: Float32Array;
  seed: number | undefined;
}

function check(name: string, value: number, ok: boolean, rule: string): void {
  if (!ok) throw new RangeError(`${name} must be ${rule}, got ${value}`);
}

/** Fills defaults and checks every parameter; throws a RangeError naming the first bad one. */
export function resolveParams(params: SamplingParams, nVocab: number): ResolvedParams {
  const { temperature = 1, topK = 0, topP = 1, minP = 0, repeatPenalty = 1, frequencyPenalty = 0, presencePenalty = 0, penaltyLastN = 64, seed } = params;
  check("temperature", temperature, Number.isFinite(temperature) && temperature >= 0, "a finite number ≥ 0");
  check("topK", topK, Number.isInteger(topK) && topK >= 0, "an integer ≥ 0");
  check("topP", topP, topP > 0 && topP <= 1, "in (0, 1]");
  check("minP", minP, minP >= 0 && minP <= 1, "in [0, 1]");
  check("repeatPenalty", repeatPenalty, Number.isFinite(repeatPenalty) && repeatPenalty > 0, "a finite number > 0");
  check("frequencyPenalty", frequencyPenalty, Number.isFinite(frequencyPenalty), "a finite number");
  check("presencePenalty", presencePenalty, Number.isFinite(presencePenalty), "a finite number");
  check("penaltyLastN", penaltyLastN, Number.isInteger(penaltyLastN) && penaltyLastN >= -1, "an integer ≥ -1");
  if (seed !== undefined) check("seed", seed, Number.isSafeInteger(seed), "a safe integer");
  const { biasIds, biasValues } = resolveBias(params.logitBias, nVocab);
  return { temperature, topK, topP, minP, repeatPenalty, frequencyPenalty, presencePenalty, penaltyLastN, biasIds, biasValues, seed };
}

function resolveBias(bias: LogitBias | undefined, nVocab: number): { biasIds: Int32Array; biasValues: Float32Array } {
  const entries: [number, number][] =
    bias === undefined ? [] : bias instanceof Map ? [...bias] : Object.entries(bias).map(([k, v]) => [Number(k), v]);
  const biasIds = new Int32Array(entries.length);
  const biasValues = new Float32Array(entries.length);
  entries.forEach(([id, value], i) => {
    check("logitBias token id", id, Number.isInteger(id) && id >= 0 && id < nVocab, `an integer in [0, ${nVocab})`);
    check(`logitBias[${id}]`, value, Number.isFinite(value) || value === -Infinity, "finite or -Infinity");
    biasIds[i] = id;
    biasValues[i] = value;
  });
  return { biasIds, biasValues };
}

/**
 * True when sampling reduces to the argmax of the biased, penalized logits — temperature 0 or
 * top-k 1 — so the seed has no effect. Bias and penalties still apply.
 */
export function isGreedy(params: SamplingParams): boolean {
  return params.temperature === 0 || params.topK === 1;
}
