/**
 * Origin routing: the shapes shared by the registry, the executor and the router. Everything
 * here is plain Web-platform TypeScript (fetch, streams, timers): it runs in a Worker, a Durable
 * Object and Node alike.
 */

/** How a target is spoken to. `openai`: vLLM, llama.cpp server, TGI's messages API, Ollama's /v1, Petrel's Node origin. `ollama`: Ollama's native NDJSON /api/chat and /api/generate. */
export type Dialect = "openai" | "ollama";

export interface Timeouts {
  /** Request sent → response headers. */
  connectMs: number;
  /** Request sent → first token (first non-empty text or token ids, or the end of an empty reply). */
  firstTokenMs: number;
  /** Longest silence between two tokens once streaming. */
  interTokenMs: number;
  /** The whole reply; 0 = no limit. */
  totalMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { connectMs: 10_000, firstTokenMs: 30_000, interTokenMs: 30_000, totalMs: 0 };

export interface OriginTarget {
  kind: "origin";
  /** Unique within the model's route; shown in x-petrel-route and logs. */
  id: string;
  /** openai: the API root as the openai client's baseURL, e.g. `http://gpu-1:8000/v1`. ollama: the server root, e.g. `http://gpu-2:11434`. */
  baseUrl: string;
  /** Bearer key sent upstream (resolved from a secret). */
  apiKey?: string;
  /** The model name the upstream knows. */
  model: string;
  dialect: Dialect;
  timeouts: Timeouts;
  /** Relative share among targets of equal priority. */
  weight: number;
  /** Lower runs first; targets of equal priority are spread by weight. */
  priority: number;
}

/** Generation at the edge (the worker's own SessionDO path), as a step of the fallback chain. */
export interface EdgeTarget {
  kind: "edge";
  id: string;
  /** The edge model (its id in the R2 bucket) that serves this route: the route's model id unless named. */
  model: string;
  weight: number;
  priority: number;
}

export type Target = OriginTarget | EdgeTarget;

export interface ModelRoute {
  /** The model id clients ask for. */
  model: string;
  targets: Target[];
}

/** What the worker asks a route to generate: the client's validated OpenAI body. */
export interface RouteRequest {
  kind: "chat" | "completion";
  /**
   * The OpenAI request body (messages or prompt, sampling fields, max_tokens, stop, …). `model`
   * is replaced by each target's upstream name, `stream`/`stream_options` are set by the
   * executor (upstreams are always streamed), Petrel-only fields (session, truncation) dropped.
   */
  body: Record<string, unknown>;
  /** Sent upstream as x-request-id. */
  requestId?: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Output of a route, in order: deltas, then exactly one `end` or `error`. */
export type RouteEvent =
  | { type: "delta"; text: string; tokenIds?: number[] }
  | { type: "end"; finishReason: string | null; usage?: Usage }
  /** The stream broke after output was sent: the reply is incomplete (finish_reason null). */
  | { type: "error"; status: number; error: OpenAIErrorBody };

export interface Attempt {
  target: string;
  kind: "origin" | "edge";
  /** "ok", or why it was skipped or failed. */
  outcome: "ok" | "circuit_open" | "skipped" | AttemptFailure;
  ms: number;
}

export type AttemptFailure =
  | "connect_timeout"
  | "first_token_timeout"
  | "unreachable"
  | "auth"
  | "model_not_found"
  | "rate_limited"
  | "upstream_5xx"
  | "bad_response"
  | "client_error"
  | "unsupported";

export interface RouteInfo {
  model: string;
  /** The target that served (or the last tried). */
  target: string | null;
  kind: "origin" | "edge" | null;
  attempts: Attempt[];
}

export type RouteResult =
  | { ok: true; route: RouteInfo; events: AsyncIterable<RouteEvent> }
  | { ok: false; route: RouteInfo; status: number; error: OpenAIErrorBody; headers: Record<string, string> };

/** The x-petrel-route header value: `origin:gpu-b`, or `origin:gpu-b; tried=gpu-a:first_token_timeout`. */
export function routeHeader(route: RouteInfo): string {
  const served = route.target === null ? "none" : `${route.kind}:${route.target}`;
  const failed = route.attempts.filter((a) => a.outcome !== "ok");
  return failed.length === 0 ? served : `${served}; tried=${failed.map((a) => `${a.target}:${a.outcome}`).join(",")}`;
}

export function errorBody(message: string, type: string, code: string | null, param: string | null = null): OpenAIErrorBody {
  return { error: { message, type, param, code } };
}
