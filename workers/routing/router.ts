/**
 * The routing policy: for a model, try its targets in order (priority, then weight among equal
 * priorities), skipping those whose circuit is open, until one produces its first token. Only
 * then is the reply committed to that target: a failure before the first token moves on to the
 * next target; a failure after it ends the reply with an error event (never a silent cut, never
 * a splice of two origins' text). The route taken is reported for the x-petrel-route header.
 */
import { AttemptError, ClientAbortError, OriginExecutor } from "./executor.ts";
import { DEFAULT_BREAKER, HealthTracker, type BreakerOptions, type CircuitBreaker } from "./health.ts";
import type { RouteTable } from "./registry.ts";
import { errorBody, type Attempt, type EdgeTarget, type OpenAIErrorBody, type RouteEvent, type RouteInfo, type RouteRequest, type RouteResult, type Target } from "./types.ts";

/**
 * Generation at the edge, supplied by the worker (its SessionDO path), for `edge` targets. It
 * throws an OpenAI-error-shaped {status, toJSON()} when the edge cannot serve (see fromEdgeError).
 */
export type EdgeHandler = (req: RouteRequest, target: EdgeTarget, signal?: AbortSignal) => AsyncIterable<RouteEvent> | Promise<AsyncIterable<RouteEvent>>;

export interface RouterOptions {
  routes: RouteTable;
  /** fetch for origins (default: global fetch). */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  edge?: EdgeHandler;
  breaker?: Partial<BreakerOptions>;
  /** Share one tracker between routers (e.g. module scope in a Worker). */
  health?: HealthTracker;
  /** [0, 1): spreads equal-priority targets by weight. Default Math.random. */
  random?: () => number;
  now?: () => number;
}

export class OriginRouter {
  readonly health: HealthTracker;
  private readonly executor: OriginExecutor;
  private readonly random: () => number;
  private readonly now: () => number;

  constructor(private readonly opts: RouterOptions) {
    this.now = opts.now ?? Date.now;
    this.health = opts.health ?? new HealthTracker({ ...DEFAULT_BREAKER, ...opts.breaker }, this.now);
    this.executor = new OriginExecutor({ fetch: opts.fetch });
    this.random = opts.random ?? Math.random;
  }

  /** Whether the model has a route (otherwise the worker serves it its usual way). */
  has(model: string): boolean {
    return this.opts.routes.get(model) !== undefined;
  }

  /** Targets in the order they would be tried now (before health). */
  order(model: string): Target[] {
    const route = this.opts.routes.get(model);
    if (!route) return [];
    const byPriority = new Map<number, Target[]>();
    for (const t of route.targets) byPriority.set(t.priority, [...(byPriority.get(t.priority) ?? []), t]);
    const out: Target[] = [];
    for (const p of [...byPriority.keys()].sort((a, b) => a - b)) {
      const group = [...byPriority.get(p)!];
      while (group.length > 0) {
        const total = group.reduce((s, t) => s + t.weight, 0);
        let r = this.random() * total;
        let i = 0;
        while (i < group.length - 1 && r >= group[i]!.weight) r -= group[i++]!.weight;
        out.push(group.splice(i, 1)[0]!);
      }
    }
    return out;
  }

  /**
   * Starts the reply: resolves once a target produced its first token (ok: true — stream the
   * events) or every target failed (ok: false — answer with status/error/headers). Rejects with
   * ClientAbortError if `signal` fires first. Returns undefined for a model with no route.
   */
  async route(model: string, req: RouteRequest, signal?: AbortSignal): Promise<RouteResult | undefined> {
    if (!this.has(model)) return undefined;
    const info: RouteInfo = { model, target: null, kind: null, attempts: [] };
    const failures: AttemptError[] = [];
    for (const target of this.order(model)) {
      if (signal?.aborted) throw new ClientAbortError();
      const breaker = this.health.breaker(`${model}/${target.id}`);
      if (target.kind === "edge" && !this.opts.edge) {
        info.attempts.push({ target: target.id, kind: "edge", outcome: "skipped", ms: 0 });
        continue;
      }
      if (!breaker.allow()) {
        info.attempts.push({ target: target.id, kind: target.kind, outcome: "circuit_open", ms: 0 });
        continue;
      }
      const started = this.now();
      info.target = target.id;
      info.kind = target.kind;
      const attempt: Attempt = { target: target.id, kind: target.kind, outcome: "ok", ms: 0 };
      info.attempts.push(attempt);
      let it: AsyncIterator<RouteEvent> | undefined;
      try {
        it = target.kind === "origin" ? this.executor.stream(target, req, signal)[Symbol.asyncIterator]() : (await this.opts.edge!(req, target, signal))[Symbol.asyncIterator]();
        const first = await it.next();
        attempt.ms = this.now() - started;
        if (first.done) throw new AttemptError("bad_response", 502, errorBody(`Target '${target.id}' ended without a reply.`, "upstream_error", "upstream_bad_response"), true, true);
        if (first.value.type === "error") throw new AttemptError("upstream_5xx", first.value.status, first.value.error, first.value.status >= 500, first.value.status >= 500);
        breaker.success();
        return { ok: true, route: info, events: this.rest(first.value, it, breaker) };
      } catch (e) {
        attempt.ms = this.now() - started;
        await it?.return?.(undefined)?.catch?.(() => {});
        if (e instanceof ClientAbortError || signal?.aborted) {
          breaker.release();
          throw new ClientAbortError();
        }
        const err = e instanceof AttemptError ? e : fromEdgeError(target.id, e);
        attempt.outcome = err.failure;
        if (err.unhealthy) breaker.failure();
        else breaker.release();
        failures.push(err);
        if (!err.retryable) return { ok: false, route: info, status: err.status, error: err.body, headers: err.headers };
      }
    }
    return { ok: false, route: info, ...this.summarize(model, info, failures) };
  }

  /** After the first token: pass events through; a failure becomes the final error event. */
  private async *rest(first: RouteEvent, it: AsyncIterator<RouteEvent>, breaker: CircuitBreaker): AsyncGenerator<RouteEvent, void, undefined> {
    let finished = first.type !== "delta";
    try {
      yield first;
      while (!finished) {
        let r: IteratorResult<RouteEvent>;
        try {
          r = await it.next();
        } catch (e) {
          finished = true;
          if (e instanceof ClientAbortError) return;
          breaker.failure();
          const err = e instanceof AttemptError ? e : fromEdgeError("edge", e);
          yield { type: "error", status: err.status, error: err.body };
          return;
        }
        if (r.done) {
          finished = true;
          breaker.failure();
          yield { type: "error", status: 502, error: errorBody("The upstream stream ended before the reply was complete.", "upstream_error", "upstream_stream_broken") };
          return;
        }
        if (r.value.type !== "delta") finished = true;
        if (r.value.type === "error") breaker.failure();
        yield r.value;
      }
    } finally {
      if (!finished) await it.return?.(undefined);
    }
  }

  private summarize(model: string, info: RouteInfo, failures: AttemptError[]): { status: number; error: OpenAIErrorBody; headers: Record<string, string> } {
    if (failures.length === 0) {
      // Nothing was tried: every circuit is open (or no executor for the edge).
      const waits = info.attempts
        .filter((a) => a.outcome === "circuit_open")
        .map((a) => this.health.breaker(`${model}/${a.target}`).snapshot().retryInMs);
      const retry = Math.max(1, Math.ceil((waits.length > 0 ? Math.min(...waits) : 1000) / 1000));
      return {
        status: 503,
        error: errorBody(`No target for model '${model}' is available right now (${info.attempts.map((a) => `${a.target}: ${a.outcome}`).join("; ")}). Retry in ${retry} s.`, "upstream_error", "no_healthy_upstream"),
        headers: { "retry-after": String(retry) },
      };
    }
    if (failures.length === 1) {
      const f = failures[0]!;
      return { status: f.status, error: f.body, headers: f.headers };
    }
    // One status for all (every target overloaded, timed out, or unable to express the request): keep it.
    const status = failures.every((f) => f.status === failures[0]!.status) ? failures[0]!.status : 502;
    const retryAfter = failures.map((f) => f.headers["retry-after"]).find((v) => v !== undefined);
    return {
      status,
      error: errorBody(
        `No target could serve model '${model}': ${failures.map((f) => f.body.error.message).join(" ")}`,
        status === 429 ? "rate_limit_error" : status < 500 ? "invalid_request_error" : "upstream_error",
        status === 504 ? "upstream_timeout" : "all_upstreams_failed",
      ),
      headers: retryAfter ? { "retry-after": retryAfter } : {},
    };
  }
}

/** Edge refusals that a bigger model elsewhere may not share: the next target is tried, the edge stays healthy. */
const EDGE_CAPACITY_CODES = ["context_length_exceeded", "model_too_large"];

/** An error thrown by the worker's edge handler: an ApiError-like {status, toJSON()} passes through. */
function fromEdgeError(target: string, e: unknown): AttemptError {
  const status = typeof (e as { status?: unknown })?.status === "number" ? (e as { status: number }).status : 500;
  const json = (e as { toJSON?: () => unknown })?.toJSON?.();
  const body =
    typeof json === "object" && json !== null && "error" in json
      ? (json as OpenAIErrorBody)
      : errorBody(`Target '${target}' failed: ${e instanceof Error ? e.message : String(e)}`, "server_error", "edge_failed");
  const code = body.error.code ?? "";
  if (EDGE_CAPACITY_CODES.includes(code)) return new AttemptError("unsupported", status, body, true, false);
  // The edge model is missing from the bucket: a configuration fault, like an origin's 404.
  if (code === "model_not_found") return new AttemptError("model_not_found", 502, body, true, true);
  const serverSide = status >= 500 || status === 429;
  return new AttemptError(status === 429 ? "rate_limited" : serverSide ? "upstream_5xx" : "client_error", status, body, serverSide, status >= 500);
}
