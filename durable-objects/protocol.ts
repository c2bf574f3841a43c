/** What the worker sends a SessionDO for one turn (POST https://session/turn). */
import type { ModelManifest } from "../workers/manifest.ts";
import type { ChatRequest, CompletionRequest } from "../workers/schemas.ts";

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
}
