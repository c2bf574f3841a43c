/**
 * The serving engine: continuous batching (iteration-level scheduling, chunked prefill, fairness,
 * backpressure, cancellation) over a model's `forwardBatch`. Platform-neutral.
 */
export { Engine, type EngineOptions, type EngineStats, type EngineTokenizer, type RequestHandle, type StepInfo } from "./engine.ts";
export { StepExecutor, type StepInput, type StepModel, type StepOutput } from "./executor.ts";
export { MeteredBackend, type WeightTraffic } from "./metered-backend.ts";
export { RequestQueue } from "./queue.ts";
export { maxWaitBound, Scheduler, validateSchedulerConfig, type SchedulableSeq, type ScheduledItem, type SchedulerConfig, type SchedulerOutput } from "./scheduler.ts";
export {
  EngineClosedError,
  EngineOverloadedError,
  EngineRequestError,
  type EngineDelta,
  type EngineDone,
  type EngineEvent,
  type EngineRequest,
  type FinishReason,
  type GenerationResult,
} from "./types.ts";
