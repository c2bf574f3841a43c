/** The worker's moderation layer (policy per tenant, ORT classifier from R2, input/output checks, routes). See README.md's Moderation section. */
export { moderationClassifier } from "./classifier.ts";
export { CLASSIFIER_KEY } from "./keys.ts";
export { ContentPolicyError, moderateGeneration } from "./input.ts";
export { GuardedOutput, guardRouteEvents, type Release } from "./output.ts";
export { moderationContext, registerModerationRoutes } from "./routes.ts";
export { tenantPolicy } from "./policy.ts";
