/**
 * AccountDO: one per tenant. It enforces the per-key limits — requests per minute and tokens per
 * minute over a sliding 60 s window — for every isolate at once (all of a tenant's requests ask
 * the same object), and keeps the tenant's usage ledger: prompt, cached and completion tokens per
 * model per UTC day. Both live in the object's SQLite storage.
 *
 * Admission: a request is admitted while the key's requests in the last 60 s are below its RPM and
 * its tokens in the last 60 s are below its TPM; its tokens (prompt + completion) are charged when
 * it ends. A refused request is told when the window will have room again (Retry-After).
 */
import { DurableObject } from "cloudflare:workers";

const WINDOW_MS = 60_000;

export interface Limits {
  rpm: number;
  tpm: number;
}

export type Admission =
  | { ok: true; limitRequests: number; remainingRequests: number; limitTokens: number; remainingTokens: number }
  | { ok: false; kind: "requests" | "tokens"; retryAfter: number; message: string };

export interface UsageRecord {
  keyHash: string;
  model: string;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  /** Milliseconds since the epoch; the ledger day is its UTC date. */
  at?: number;
}

export interface UsageRow {
  date: string;
  model: string;
  requests: number;
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
}

export class AccountDO extends DurableObject {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: unknown) {
    super(ctx, env as never);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS rl_events (key TEXT NOT NULL, ts INTEGER NOT NULL, requests INTEGER NOT NULL, tokens INTEGER NOT NULL)`);
    this.sql.exec(`CREATE INDEX IF NOT EXISTS rl_events_key_ts ON rl_events (key, ts)`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS usage (date TEXT NOT NULL, model TEXT NOT NULL, requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,
      cached_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, PRIMARY KEY (date, model))`);
  }

  /** Admits one request of `keyHash` (and counts it) or says when to retry. */
  admit(keyHash: string, limits: Limits, now = Date.now()): Admission {
    this.sql.exec(`DELETE FROM rl_events WHERE ts <= ?`, now - WINDOW_MS);
    const events = this.sql
      .exec<{ ts: number; requests: number; tokens: number }>(`SELECT ts, requests, tokens FROM rl_events WHERE key = ? ORDER BY ts`, keyHash)
      .toArray();
    let requests = 0;
    let tokens = 0;
    for (const e of events) {
      requests += e.requests;
      tokens += e.tokens;
    }
    if (requests >= limits.rpm) {
      // Room comes back when enough of the oldest requests leave the window.
      let excess = requests - limits.rpm + 1;
      let until = now;
      for (const e of events) {
        if (e.requests === 0) continue;
        excess -= e.requests;
        until = e.ts + WINDOW_MS;
        if (excess <= 0) break;
      }
      const retryAfter = Math.max(1, Math.ceil((until - now) / 1000));
      return { ok: false, kind: "requests", retryAfter, message: `Rate limit reached for requests per min (RPM): Limit ${limits.rpm}, Used ${requests}, Requested 1. Please try again in ${retryAfter}s.` };
    }
    if (tokens >= limits.tpm) {
      let excess = tokens - limits.tpm + 1;
      let until = now;
      for (const e of events) {
        if (e.tokens === 0) continue;
        excess -= e.tokens;
        until = e.ts + WINDOW_MS;
        if (excess <= 0) break;
      }
      const retryAfter = Math.max(1, Math.ceil((until - now) / 1000));
      return { ok: false, kind: "tokens", retryAfter, message: `Rate limit reached for tokens per min (TPM): Limit ${limits.tpm}, Used ${tokens}. Please try again in ${retryAfter}s.` };
    }
    this.sql.exec(`INSERT INTO rl_events (key, ts, requests, tokens) VALUES (?, ?, 1, 0)`, keyHash, now);
    return {
      ok: true,
      limitRequests: limits.rpm,
      remainingRequests: limits.rpm - requests - 1,
      limitTokens: limits.tpm,
      remainingTokens: Math.max(0, limits.tpm - tokens),
    };
  }

  /** Charges a finished (or interrupted) request's tokens to its key and to the ledger. */
  record(u: UsageRecord): void {
    const at = u.at ?? Date.now();
    const total = u.promptTokens + u.completionTokens;
    if (total > 0) this.sql.exec(`INSERT INTO rl_events (key, ts, requests, tokens) VALUES (?, ?, 0, ?)`, u.keyHash, at, total);
    const date = new Date(at).toISOString().slice(0, 10);
    this.sql.exec(
      `INSERT INTO usage (date, model, requests, prompt_tokens, cached_tokens, completion_tokens) VALUES (?, ?, 1, ?, ?, ?)
       ON CONFLICT (date, model) DO UPDATE SET requests = requests + 1, prompt_tokens = prompt_tokens + excluded.prompt_tokens,
       cached_tokens = cached_tokens + excluded.cached_tokens, completion_tokens = completion_tokens + excluded.completion_tokens`,
      date, u.model, u.promptTokens, u.cachedTokens, u.completionTokens,
    );
  }

  /** Ledger rows for UTC dates in [start, end] (YYYY-MM-DD), by date then model. */
  usage(start: string, end: string): UsageRow[] {
    return this.sql
      .exec<Record<string, SqlStorageValue>>(`SELECT date, model, requests, prompt_tokens, cached_tokens, completion_tokens FROM usage
        WHERE date >= ? AND date <= ? ORDER BY date, model`, start, end)
      .toArray()
      .map((r) => ({
        date: String(r.date),
        model: String(r.model),
        requests: Number(r.requests),
        prompt_tokens: Number(r.prompt_tokens),
        cached_tokens: Number(r.cached_tokens),
        completion_tokens: Number(r.completion_tokens),
      }));
  }
}
