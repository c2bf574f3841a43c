/**
 * Which moderation policy a tenant gets: a policy stored in KV (set at run time through the admin
 * route) first, then the tenant's entry in MODERATION_POLICIES, then its "*" entry, then the
 * default policy (rules + the shipped classifier).
 */
import { DEFAULT_POLICY, parsePolicy, type ModerationPolicy } from "../../kernels/moderation/index.ts";
import type { Env } from "../env.ts";
import { policyKvKey } from "./keys.ts";


let configured: { source: string | undefined; byTenant: Map<string, ModerationPolicy> } | undefined;

/** MODERATION_POLICIES parsed once per isolate (again when it changes); an invalid one is logged and ignored. */
function configuredPolicies(env: Env): Map<string, ModerationPolicy> {
  const source = env.MODERATION_POLICIES?.trim() || undefined;
  if (configured && configured.source === source) return configured.byTenant;
  const byTenant = new Map<string, ModerationPolicy>();
  if (source !== undefined) {
    try {
      const raw = JSON.parse(source) as unknown;
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error("expected a JSON object keyed by tenant");
      for (const [tenant, value] of Object.entries(raw)) byTenant.set(tenant, parsePolicy(value));
    } catch (e) {
      byTenant.clear();
      console.error(JSON.stringify({ level: "error", component: "moderation", msg: "MODERATION_POLICIES ignored: every tenant gets the default policy", error: e instanceof Error ? e.message : String(e) }));
    }
  }
  configured = { source, byTenant };
  return byTenant;
}

export async function tenantPolicy(env: Env, tenant: string): Promise<ModerationPolicy> {
  const stored = await env.KEYS.get(policyKvKey(tenant), "json");
  if (stored !== null) {
    try {
      return parsePolicy(stored);
    } catch (e) {
      console.error(JSON.stringify({ level: "error", component: "moderation", msg: "stored policy invalid: using the configured one", tenant, error: e instanceof Error ? e.message : String(e) }));
    }
  }
  const byTenant = configuredPolicies(env);
  return byTenant.get(tenant) ?? byTenant.get("*") ?? DEFAULT_POLICY;
}

/** Whether the policy checks anything on input (rules, classifier, judge or external). */
export function checksInput(policy: ModerationPolicy): boolean {
  const c = policy.checks;
  return c.rules || c.classifier || c.judge || c.external;
}

/** Whether generated text goes through the output guard (rules and the classifier run on it). */
export function checksOutput(policy: ModerationPolicy): boolean {
  return policy.output.enabled && (policy.checks.rules || policy.checks.classifier);
}

/** Whether a generation turn needs the policy at all. */
export function moderatesGeneration(policy: ModerationPolicy): boolean {
  return checksInput(policy) || checksOutput(policy) || policy.systemPrompt !== undefined;
}
