/**
 * The routing table of a Worker's `ORIGIN_ROUTES` var, parsed once per isolate and again only
 * when the text changes, and the isolate's health tracker. The worker (sessionless routed turns)
 * and the SessionDO (routed session turns) share both within an isolate, so circuit breakers
 * outlive the routers built per request.
 */
import { HealthTracker } from "./health.ts";
import { parseRoutes, type RouteTable } from "./registry.ts";

export const isolateHealth = new HealthTracker();

let parsed: { config: string | undefined; routes: RouteTable | undefined } | undefined;

/** The routes of `config` (undefined when unset or invalid: `onInvalid` is told why, once per config). */
export function routeTableOf(config: string | undefined, secrets: Readonly<Record<string, unknown>>, onInvalid: (error: string) => void): RouteTable | undefined {
  const text = config?.trim() || undefined;
  if (parsed && parsed.config === text) return parsed.routes;
  let routes: RouteTable | undefined;
  if (text !== undefined) {
    try {
      routes = parseRoutes(text, secrets);
    } catch (e) {
      onInvalid(e instanceof Error ? e.message : String(e));
    }
  }
  parsed = { config: text, routes };
  return routes;
}
