/**
 * Origin routing for the worker: a registry of routes (model → ordered targets), an executor
 * for OpenAI-compatible and Ollama-native origins, a router with health tracking (circuit
 * breakers), fallback before the first token, timeouts, and helpers to answer the client.
 * Web-platform only: runs in Workers, Durable Objects and Node.
 */
export { AttemptError, ClientAbortError, OriginExecutor } from "./executor.ts";
export { CircuitBreaker, DEFAULT_BREAKER, HealthTracker, type BreakerOptions, type BreakerSnapshot, type BreakerState } from "./health.ts";
export { isolateHealth, routeTableOf } from "./from-env.ts";
export { parseRoutes, RouteConfigError, routeConfigSchema, RouteTable, type RouteConfig } from "./registry.ts";
export { collectReply, metered, replyObject, replyResponse, sseStream, type Reply, type ReplyMeta, type ReplyOptions } from "./respond.ts";
export { OriginRouter, type EdgeHandler, type RouterOptions } from "./router.ts";
export {
  DEFAULT_TIMEOUTS,
  errorBody,
  routeHeader,
  type Attempt,
  type AttemptFailure,
  type Dialect,
  type EdgeTarget,
  type ModelRoute,
  type OpenAIErrorBody,
  type OriginTarget,
  type RouteEvent,
  type RouteInfo,
  type RouteRequest,
  type RouteResult,
  type Target,
  type Timeouts,
  type Usage,
} from "./types.ts";
