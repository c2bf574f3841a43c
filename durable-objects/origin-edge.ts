/**
 * The edge as a routing target: the turn runs in a fresh ephemeral SessionDO on the target's
 * edge model (from the R2 bucket), exactly as an unrouted request would, and its SSE reply is read
 * back as route events. The router can then put the edge before or after origins in a model's
 * fallback chain. Output moderation and the routed usage are the caller's (the edge turn charges
 * its own tokens); the ephemeral object stores nothing.
 */
import { ApiError, isOpenAIErrorBody, notFound } from "../workers/errors.ts";
import type { Env } from "../workers/env.ts";
import { readManifest } from "../workers/manifest.ts";
import { DIALECTS, lines } from "../workers/routing/dialects.ts";
import type { EdgeHandler } from "../workers/routing/index.ts";
import type { RouteCaller } from "./origin-usage.ts";
import type { TurnInput } from "./protocol.ts";

/** The edge turn's refusal (400 context_length_exceeded, 409, 500…) as an ApiError the router classifies. */
async function edgeRefusal(res: Response): Promise<ApiError> {
  const body: unknown = await res.json().catch(() => null);
  if (!isOpenAIErrorBody(body)) return new ApiError(res.status, `The edge answered HTTP ${res.status}.`, "server_error", "edge_failed");
  const e = body.error;
  const retryAfter = res.headers.get("retry-after");
  return new ApiError(res.status, e.message, e.type, e.code, e.param, retryAfter ? { "retry-after": retryAfter } : {});
}

export function edgeHandler(env: Env, caller: RouteCaller): EdgeHandler {
  return async (req, target, signal) => {
    const manifest = await readManifest(env.MODELS, target.model);
    if (!manifest) throw notFound(`The edge model '${target.model}' of target '${target.id}' is not in the model bucket.`, null, "model_not_found");
    const turn: TurnInput = {
      kind: req.kind,
      requestId: caller.requestId,
      tenant: caller.tenant,
      keyHash: caller.keyHash,
      session: null,
      manifest,
      body: { ...req.body, model: manifest.id, stream: true, stream_options: { include_usage: true } } as unknown as TurnInput["body"],
    };
    const ns = env.SESSIONS;
    const res = await ns.get(ns.newUniqueId()).fetch("https://session/turn", {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": caller.requestId },
      body: JSON.stringify(turn),
      ...(signal && { signal }),
    });
    if (!res.ok || !res.body) throw await edgeRefusal(res);
    return DIALECTS.openai.parse(lines(res.body), req.kind);
  };
}
