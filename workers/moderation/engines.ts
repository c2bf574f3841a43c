/**
 * The checks a policy enables, ready to run: the classifier (ORT, from R2), the LLM judge (an
 * edge model of this worker, or an OpenAI-compatible origin) and the external /v1/moderations
 * endpoint. Requests to this worker's own origin (a judge or endpoint pointing back at this
 * deployment) are answered in-process instead of going out over the network.
 */
import { createExternalModerator, createPromptJudge, type ModerationEngines, type ModerationPolicy } from "../../kernels/moderation/index.ts";
import type { Env } from "../env.ts";
import { moderationClassifier } from "./classifier.ts";
import { edgeJudgeCompletion, urlJudgeCompletion } from "./judge.ts";

export interface EngineContext {
  env: Env;
  tenant: string;
  keyHash: string;
  requestId: string;
  /** This worker's origin and a way to serve a request to it in-process (absent in a Durable Object). */
  self?: { origin: string; fetch: (request: Request) => Promise<Response> };
  /** The request being moderated was sent by this worker to itself: no judge or external check. */
  nested?: boolean;
}

/**
 * Requests this worker sent to itself in-process (a judge or an external endpoint pointing back
 * here). Their own moderation runs no judge or external check, so a policy that points at its
 * own tenant cannot loop; clients cannot mark a request as one of these.
 */
const inProcess = new WeakSet<Request>();

export const isInProcessRequest = (request: Request) => inProcess.has(request);

/** fetch, but requests to this worker's own origin are served in-process. */
function selfAwareFetch(self: EngineContext["self"]): typeof fetch {
  return (input, init) => {
    const request = new Request(input, init);
    if (!self || new URL(request.url).origin !== self.origin) return fetch(request);
    inProcess.add(request);
    return self.fetch(request);
  };
}

export async function classifierEngine(env: Env, policy: ModerationPolicy): Promise<Pick<ModerationEngines, "classifier">> {
  if (!policy.checks.classifier) return {};
  try {
    const classifier = await moderationClassifier(env.MODELS);
    return classifier ? { classifier } : {};
  } catch (e) {
    // The pipeline treats a missing engine as a skipped check; the load failure is logged here.
    console.error(JSON.stringify({ level: "error", component: "moderation", msg: "classifier failed to load", error: e instanceof Error ? e.message : String(e) }));
    return {};
  }
}

export async function moderationEngines(policy: ModerationPolicy, ctx: EngineContext): Promise<ModerationEngines> {
  const engines: ModerationEngines = await classifierEngine(ctx.env, policy);
  const doFetch = selfAwareFetch(ctx.self);
  if (ctx.nested) return engines;
  if (policy.checks.external && policy.external) {
    const { url, model, timeoutMs, apiKeySecret } = policy.external;
    engines.external = createExternalModerator({ url, model, timeoutMs, apiKey: apiKeySecret && ctx.env[apiKeySecret as `MODERATION_${string}_KEY`], fetch: doFetch });
  }
  // A check the policy turns on but does not configure fails (and follows onCheckError) instead of vanishing.
  if (policy.checks.external && !policy.external) engines.external = () => Promise.reject(new Error("external: the policy names no external.url"));
  const judge = policy.judge;
  if (policy.checks.judge && judge.model === undefined) engines.judge = () => Promise.reject(new Error("judge: the policy names no judge.model"));
  if (policy.checks.judge && judge.model !== undefined) {
    const model = judge.model;
    engines.judge = createPromptJudge(
      judge.url !== undefined
        ? (prompt) => urlJudgeCompletion({ url: judge.url!, model, maxTokens: judge.maxTokens, apiKey: judge.apiKeySecret && ctx.env[judge.apiKeySecret as `MODERATION_${string}_KEY`], fetch: doFetch, requestId: ctx.requestId }, prompt)
        : (prompt) => edgeJudgeCompletion(ctx, { model, maxTokens: judge.maxTokens }, prompt),
    );
  }
  return engines;
}
