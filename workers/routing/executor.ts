/**
 * OriginExecutor: one attempt at one origin target. It sends the request in the target's
 * dialect (always streamed upstream, whatever the client asked: one code path, and timeouts to
 * first token and between tokens apply to non-stream clients too), and yields the reply's text
 * deltas and its end as they arrive. Failures are thrown as AttemptError, classified (retryable
 * on another target? does it count against the target's health?) and carrying the OpenAI error
 * object the client should see. Ending the iteration early aborts the upstream request.
 *
 * Timeouts measure the upstream only: the clock is paused while the consumer holds a delta.
 */
import { DIALECTS, lines, messageOf, UpstreamStreamError, type ParsedEvent } from "./dialects.ts";
import { errorBody, type AttemptFailure, type OpenAIErrorBody, type OriginTarget, type RouteRequest } from "./types.ts";

export class AttemptError extends Error {
  override name = "AttemptError";
  constructor(
    readonly failure: AttemptFailure,
    /** The status the client gets if no other target serves. */
    readonly status: number,
    readonly body: OpenAIErrorBody,
    /** Another target may serve the request (before the first token). */
    readonly retryable: boolean,
    /** It says the target is unhealthy (feeds the circuit breaker). */
    readonly unhealthy: boolean,
    readonly headers: Record<string, string> = {},
  ) {
    super(body.error.message);
  }
}

/** The client went away (its AbortSignal fired): not the target's fault. */
export class ClientAbortError extends Error {
  override name = "ClientAbortError";
  constructor() {
    super("the client closed the request");
  }
}

type Fetch = (input: string, init: RequestInit) => Promise<Response>;

type Timer = "connect" | "first_token" | "inter_token" | "total";

/** clearTimeout that type-checks under both Node's and the Workers' timer types. */
function stopTimer(t: ReturnType<typeof setTimeout> | undefined): void {
  if (t !== undefined) clearTimeout(t);
}

export class OriginExecutor {
  private readonly fetch: Fetch;

  constructor(opts: { fetch?: Fetch } = {}) {
    this.fetch = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  async *stream(target: OriginTarget, req: RouteRequest, signal?: AbortSignal): AsyncGenerator<ParsedEvent, void, undefined> {
    const dialect = DIALECTS[target.dialect];
    const call = dialect.request(target, req);
    if ("unsupported" in call) {
      throw new AttemptError("unsupported", 400, errorBody(`Origin '${target.id}' cannot serve this request: ${call.unsupported}.`, "invalid_request_error", "unsupported_by_upstream"), true, false);
    }
    if (signal?.aborted) throw new ClientAbortError();

    const t = target.timeouts;
    const ac = new AbortController();
    let fired: Timer | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = (kind: Timer, ms: number) => {
      stopTimer(timer);
      timer = setTimeout(() => {
        fired = kind;
        ac.abort(new Error(`${kind} timeout`));
      }, Math.max(0, ms));
    };
    const totalTimer = t.totalMs > 0 ? setTimeout(() => ((fired = "total"), ac.abort(new Error("total timeout"))), t.totalMs) : undefined;
    const onClientAbort = () => ac.abort(new ClientAbortError());
    signal?.addEventListener("abort", onClientAbort, { once: true });
    const started = Date.now();
    let output = false;
    const fail = (e: unknown): never => {
      if (signal?.aborted) throw new ClientAbortError();
      throw classify(target, e, fired, output);
    };

    try {
      arm("connect", Math.min(t.connectMs, t.firstTokenMs));
      const headers: Record<string, string> = { "content-type": "application/json", accept: target.dialect === "openai" ? "text/event-stream" : "application/x-ndjson" };
      if (target.apiKey) headers.authorization = `Bearer ${target.apiKey}`;
      if (req.requestId) headers["x-request-id"] = req.requestId;
      let res: Response;
      try {
        res = await this.fetch(call.url, { method: "POST", headers, body: JSON.stringify(call.body), signal: ac.signal });
      } catch (e) {
        return fail(e);
      }
      if (!res.ok) {
        stopTimer(timer);
        const text = await res.text().catch(() => "");
        throw httpFailure(target, res.status, text, res.headers);
      }
      if (!res.body) throw new AttemptError("bad_response", 502, errorBody(`Origin '${target.id}' sent an empty response.`, "upstream_error", "upstream_bad_response"), true, true);
      arm("first_token", t.firstTokenMs - (Date.now() - started));
      const events = dialect.parse(lines(res.body), req.kind);
      try {
        for (;;) {
          let r: IteratorResult<ParsedEvent>;
          try {
            r = await events.next();
          } catch (e) {
            return fail(e);
          }
          if (r.done) return;
          stopTimer(timer);
          output = true;
          yield r.value;
          if (r.value.type === "end") return;
          arm("inter_token", t.interTokenMs);
        }
      } finally {
        await events.return(undefined).catch(() => {});
      }
    } finally {
      stopTimer(timer);
      stopTimer(totalTimer);
      signal?.removeEventListener("abort", onClientAbort);
      ac.abort(); // done or abandoned: release the upstream connection
    }
  }
}

function classify(target: OriginTarget, e: unknown, fired: Timer | null, afterOutput: boolean): AttemptError {
  const t = target.timeouts;
  if (e instanceof AttemptError) return e;
  if (fired !== null) {
    const what =
      fired === "connect" ? `did not answer within ${Math.min(t.connectMs, t.firstTokenMs)} ms`
      : fired === "first_token" ? `sent no token within ${t.firstTokenMs} ms`
      : fired === "inter_token" ? `stalled: no token for ${t.interTokenMs} ms`
      : `did not finish within ${t.totalMs} ms`;
    const failure: AttemptFailure = fired === "connect" ? "connect_timeout" : "first_token_timeout";
    return new AttemptError(failure, 504, errorBody(`Origin '${target.id}' ${what}.`, "upstream_error", "upstream_timeout"), true, true);
  }
  if (e instanceof UpstreamStreamError) {
    return new AttemptError("bad_response", 502, errorBody(`Origin '${target.id}': ${e.message}.`, "upstream_error", e.kind === "truncated" ? "upstream_stream_broken" : "upstream_error"), true, true);
  }
  const cause = e instanceof Error && e.cause instanceof Error ? ` (${(e.cause as Error & { code?: string }).code ?? e.cause.message})` : "";
  const message = afterOutput
    ? `Origin '${target.id}' dropped the connection mid-stream${cause}.`
    : `Could not reach origin '${target.id}' at ${target.baseUrl}${cause}.`;
  return new AttemptError("unreachable", 502, errorBody(message, "upstream_error", afterOutput ? "upstream_stream_broken" : "upstream_unreachable"), true, true);
}

function httpFailure(target: OriginTarget, status: number, text: string, headers: Headers): AttemptError {
  let upstream = text.slice(0, 500);
  try {
    upstream = messageOf(JSON.parse(text));
  } catch {
    // not JSON: keep the text
  }
  const said = upstream ? `: ${upstream}` : "";
  if (status === 401 || status === 403) {
    return new AttemptError(
      "auth",
      502,
      errorBody(`Origin '${target.id}' rejected Petrel's API key (HTTP ${status}${said}). The key configured for this origin is wrong or missing.`, "upstream_error", "upstream_auth_failed"),
      true,
      true,
    );
  }
  if (status === 404) {
    return new AttemptError("model_not_found", 502, errorBody(`Origin '${target.id}' does not serve model '${target.model}' (HTTP 404${said}).`, "upstream_error", "upstream_model_not_found"), true, true);
  }
  if (status === 429) {
    const retryAfter = headers.get("retry-after");
    return new AttemptError("rate_limited", 429, errorBody(`Origin '${target.id}' is overloaded (HTTP 429${said}).`, "rate_limit_error", "upstream_overloaded"), true, false, retryAfter ? { "retry-after": retryAfter } : {});
  }
  if (status >= 500) {
    return new AttemptError("upstream_5xx", 502, errorBody(`Origin '${target.id}' failed (HTTP ${status}${said}).`, "upstream_error", "upstream_error"), true, true);
  }
  // 400, 413, 422…: the request itself was refused; another origin would refuse it too.
  return new AttemptError("client_error", status === 422 ? 400 : status, errorBody(`Origin '${target.id}' refused the request (HTTP ${status}${said}).`, "invalid_request_error", "upstream_rejected_request"), false, false);
}
