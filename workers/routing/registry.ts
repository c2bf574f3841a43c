/**
 * The model registry's routing entries: which targets serve a model, in what order. Written as
 * JSON (a `ORIGIN_ROUTES` var, or a file in R2), validated here; API keys are never in the JSON
 * itself but named (`apiKeySecret`) and looked up in the Worker's secrets.
 *
 * ```json
 * {"models": [{"model": "llama-70b", "targets": [
 *   {"kind": "origin", "id": "gpu-a", "baseUrl": "https://gpu-a.example/v1", "model": "meta-llama/Llama-3.1-70B-Instruct",
 *    "dialect": "openai", "apiKeySecret": "ORIGIN_GPU_A_KEY", "timeouts": {"firstTokenMs": 20000}},
 *   {"kind": "origin", "id": "ollama-b", "baseUrl": "http://gpu-b:11434", "model": "llama3.1:70b", "dialect": "ollama"},
 *   {"kind": "edge", "id": "edge", "model": "llama-3.2-1b-q4"}]}]}
 * ```
 */
import { z } from "zod";
import { DEFAULT_TIMEOUTS, type ModelRoute, type Target } from "./types.ts";

const ID = /^[A-Za-z0-9._:-]{1,64}$/;

const timeoutsSchema = z
  .object({
    connectMs: z.number().int().positive().optional(),
    firstTokenMs: z.number().int().positive().optional(),
    interTokenMs: z.number().int().positive().optional(),
    totalMs: z.number().int().min(0).optional(),
  })
  .strict();

const originSchema = z
  .object({
    kind: z.literal("origin"),
    id: z.string().regex(ID, "target ids are 1–64 characters of A-Z a-z 0-9 . _ : -"),
    baseUrl: z.url({ protocol: /^https?$/, error: "baseUrl must be an http(s) URL" }),
    model: z.string().min(1),
    dialect: z.enum(["openai", "ollama"]),
    /** Name of the secret holding the bearer key. */
    apiKeySecret: z.string().min(1).optional(),
    /** A literal key: for local development only (never commit one). */
    apiKey: z.string().min(1).optional(),
    timeouts: timeoutsSchema.optional(),
    weight: z.number().positive().optional(),
    priority: z.number().int().optional(),
  })
  .strict();

const edgeSchema = z
  .object({
    kind: z.literal("edge"),
    id: z.string().regex(ID).default("edge"),
    /** The R2 model id the edge runs (default: the route's model id). */
    model: z.string().min(1).max(128).optional(),
    weight: z.number().positive().optional(),
    priority: z.number().int().optional(),
  })
  .strict();

const routeSchema = z.object({
  model: z.string().min(1).max(256),
  targets: z.array(z.discriminatedUnion("kind", [originSchema, edgeSchema])).min(1, "a route needs at least one target"),
});

export const routeConfigSchema = z.object({ models: z.array(routeSchema) });
export type RouteConfig = z.input<typeof routeConfigSchema>;

export class RouteConfigError extends Error {
  override name = "RouteConfigError";
}

/** The validated routing table: model id → ordered targets. */
export class RouteTable {
  private readonly routes = new Map<string, ModelRoute>();

  constructor(routes: readonly ModelRoute[]) {
    for (const r of routes) {
      if (this.routes.has(r.model)) throw new RouteConfigError(`model '${r.model}' is routed twice`);
      const ids = new Set<string>();
      for (const t of r.targets) {
        if (ids.has(t.id)) throw new RouteConfigError(`model '${r.model}': target id '${t.id}' appears twice`);
        ids.add(t.id);
      }
      this.routes.set(r.model, r);
    }
  }

  get(model: string): ModelRoute | undefined {
    return this.routes.get(model);
  }

  models(): string[] {
    return [...this.routes.keys()].sort();
  }
}

/**
 * Validates a routing config (a parsed JSON value or its text) and resolves each target's key
 * from `secrets` (the Worker's env). Throws RouteConfigError naming the first problem.
 */
export function parseRoutes(config: unknown, secrets: Readonly<Record<string, unknown>> = {}): RouteTable {
  let value = config;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch (e) {
      throw new RouteConfigError(`routing config is not JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const parsed = routeConfigSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RouteConfigError(`routing config: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
  }
  return new RouteTable(
    parsed.data.models.map((m) => ({
      model: m.model,
      targets: m.targets.map((t, i): Target => {
        if (t.kind === "edge") return { kind: "edge", id: t.id, model: t.model ?? m.model, weight: t.weight ?? 1, priority: t.priority ?? i };
        let apiKey = t.apiKey;
        if (t.apiKeySecret !== undefined) {
          const secret = secrets[t.apiKeySecret];
          if (typeof secret !== "string" || secret === "") throw new RouteConfigError(`model '${m.model}', target '${t.id}': secret ${t.apiKeySecret} is not set`);
          apiKey = secret;
        }
        return {
          kind: "origin",
          id: t.id,
          baseUrl: t.baseUrl.replace(/\/+$/, ""),
          model: t.model,
          dialect: t.dialect,
          ...(apiKey !== undefined && { apiKey }),
          timeouts: { ...DEFAULT_TIMEOUTS, ...t.timeouts },
          weight: t.weight ?? 1,
          priority: t.priority ?? i,
        };
      }),
    })),
  );
}
