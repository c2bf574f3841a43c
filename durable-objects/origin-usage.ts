/**
 * Usage of a routed turn, charged to the tenant's ledger when the reply ends (or breaks): the
 * origin's own count when it reported one, else the tokens seen. A turn an edge target served
 * ran in a SessionDO, which charged it there (with its cached tokens): nothing more is recorded.
 */
import type { Env } from "../workers/env.ts";
import type { RouteInfo, Usage } from "../workers/routing/index.ts";

export interface RouteCaller {
  tenant: string;
  keyHash: string;
  requestId: string;
}

export function routedUsage(env: Env, caller: RouteCaller, model: string, servedBy: RouteInfo["kind"]): (usage: Usage | undefined, seen: number) => Promise<void> {
  return async (usage, seen) => {
    if (servedBy !== "origin") return;
    try {
      await env.ACCOUNTS.get(env.ACCOUNTS.idFromName(caller.tenant)).record({
        keyHash: caller.keyHash,
        model,
        promptTokens: usage?.prompt_tokens ?? 0,
        cachedTokens: 0,
        completionTokens: usage?.completion_tokens ?? seen,
      });
    } catch (e) {
      console.error(JSON.stringify({ level: "error", component: "routing", request_id: caller.requestId, msg: "usage not recorded", error: String(e) }));
    }
  };
}
