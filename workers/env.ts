/** The bindings the worker and its Durable Objects see (wrangler.toml, .dev.vars, secrets). */
import type { AccountDO } from "../durable-objects/account.ts";
import type { SessionDO } from "../durable-objects/session.ts";
import type { ShardDO } from "../durable-objects/shard.ts";

export interface Env {
  SESSIONS: DurableObjectNamespace<SessionDO>;
  ACCOUNTS: DurableObjectNamespace<AccountDO>;
  /** Layer ranges of sharded models (durable-objects/shard.ts), one object per model, shard and replica. */
  SHARDS: DurableObjectNamespace<ShardDO>;
  MODELS: R2Bucket;
  KEYS: KVNamespace;
  /** JSON array of configured keys: {id, hash (sha256 hex of the key), tenant, rpm?, tpm?}. Secret. */
  API_KEYS?: string;
  /** Comma-separated sha256 hex digests of admin keys. Secret. */
  ADMIN_KEY_HASHES?: string;
  MEMORY_BUDGET_MB?: string;
  MAX_BODY_BYTES?: string;
  CORS_ORIGINS?: string;
  DEFAULT_RPM?: string;
  DEFAULT_TPM?: string;
  PREFILL_CHUNK?: string;
  /** Compute backend of the SessionDOs: "wasm" (default) or "js". */
  BACKEND?: string;
  /**
   * Origin routes (workers/routing): JSON `{"models": [{"model", "targets": [...]}]}`. A routed
   * model is served by its targets (GPU origins, the edge) instead of a SessionDO. Origin keys
   * are named by `apiKeySecret` and read from the secret of that name.
   */
  ORIGIN_ROUTES?: string;
  /** The secrets ORIGIN_ROUTES names (`apiKeySecret`), e.g. ORIGIN_GPU_A_KEY. */
  [secret: `ORIGIN_${string}_KEY`]: string | undefined;
  /**
   * Moderation policies (workers/moderation): JSON `{"<tenant>": policy, "*": policy of the
   * others}`; unset, every tenant gets the default policy. A policy in KEYS at
   * `moderation-policy:<tenant>` (PUT /v1/admin/moderation/policies/<tenant>) takes precedence.
   */
  MODERATION_POLICIES?: string;
  /** The secrets moderation policies name (`apiKeySecret`) for a judge or an external endpoint. */
  [secret: `MODERATION_${string}_KEY`]: string | undefined;
}

/** A positive number from a var, or the fallback when it is absent or malformed. */
export function numberVar(value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === "") return fallback;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}
