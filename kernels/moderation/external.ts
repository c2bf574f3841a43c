/**
 * The optional external check: an OpenAI-compatible POST /v1/moderations endpoint (OpenAI's
 * own, or any service speaking its schema), called with fetch.
 */
import { CATEGORIES, type Category, type CategoryMap, categoryMap } from "./taxonomy.ts";

export interface ExternalResult {
  flagged: boolean;
  categories: Partial<Record<Category, boolean>>;
  scores: CategoryMap<number>;
}

/** Moderates a list of texts; one result per text. */
export type ExternalModerator = (texts: string[]) => Promise<ExternalResult[]>;

export interface ExternalOptions {
  url: string;
  model?: string;
  apiKey?: string;
  timeoutMs?: number;
  /** defaults to globalThis.fetch */
  fetch?: typeof fetch;
  headers?: Record<string, string>;
}

export function createExternalModerator(opts: ExternalOptions): ExternalModerator {
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
  return async (texts) => {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), opts.timeoutMs ?? 5000);
    try {
      const res = await doFetch(opts.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}),
          ...opts.headers,
        },
        body: JSON.stringify({ model: opts.model ?? "omni-moderation-latest", input: texts }),
        signal: controller.signal,
      });
      if (!res.ok) throw new Error(`external moderation: HTTP ${res.status}`);
      const body = (await res.json()) as { results?: unknown };
      if (!Array.isArray(body.results) || body.results.length !== texts.length) {
        throw new Error("external moderation: response has no results array of the input's length");
      }
      return body.results.map((r) => {
        const o = r as { flagged?: unknown; categories?: Record<string, unknown>; category_scores?: Record<string, unknown> };
        const categories: Partial<Record<Category, boolean>> = {};
        for (const c of CATEGORIES) if (typeof o.categories?.[c] === "boolean") categories[c] = o.categories[c] as boolean;
        const scores = categoryMap((c) => {
          const v = o.category_scores?.[c];
          return typeof v === "number" && Number.isFinite(v) ? v : 0;
        });
        return { flagged: o.flagged === true, categories, scores };
      });
    } finally {
      clearTimeout(timer);
    }
  };
}
