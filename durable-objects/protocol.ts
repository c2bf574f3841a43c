/** What the worker sends a SessionDO for one turn (POST https://session/turn). */
import type { ModelManifest } from "../workers/manifest.ts";
import type { ChatRequest, CompletionRequest } from "../workers/schemas.ts";
import type { ModerationPolicy } from "../kernels/moderation/index.ts";

export interface TurnInput {
  kind: "chat" | "completion";
  requestId: string;
  tenant: string;
  /** The caller's key digest: the rate limiter charges the turn's tokens to it. */
  keyHash: string;
  /** Null: an ephemeral session (nothing is stored). */
  session: string | null;
  manifest: ModelManifest;
  body: ChatRequest | CompletionRequest;
  /** The tenant's moderation policy when it moderates the turn (output guard, pinned system prompt, token-id prompts). */
  moderation?: ModerationPolicy;
}

/**
 * A session turn of a model ORIGIN_ROUTES routes (durable-objects/origin-turn.ts): the SessionDO
 * keeps the history and sends the route's targets the whole conversation. No manifest: the
 * model may not be at the edge at all.
 */
export interface RoutedTurnInput extends Omit<TurnInput, "manifest" | "session"> {
  routed: true;
  session: string;
}
