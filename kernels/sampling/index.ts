/** Sampling: the sampler chain, stop strings and beam search. */
export { Sampler } from "./sampler.ts";
export type { TokenProbability } from "./draw.ts";
export { isGreedy, type LogitBias, type SamplingParams } from "./params.ts";
export { StopStringMatcher, type StopResult } from "./stop-strings.ts";
export { beamSearch, type BeamModel, type BeamSearchOptions, type BeamStart, type BeamStep, type Hypothesis } from "./beam-search.ts";
export { Xoshiro128, randomSeed } from "./rng.ts";
export { modelBeams, type ModelBeamOptions } from "./model-beams.ts";
