/**
 * Petrel moderation engine — platform-neutral (Workers, Node, browsers). See README.md here for
 * the API, the policy format and the classifier's input/output contract.
 */
export { CATEGORIES, type Category, type CategoryMap, categoryMap, closeLabels, isCategory, parentCategory } from "./taxonomy.ts";
export {
  DEFAULT_POLICY,
  ModerationPolicySchema,
  PolicyError,
  categoryAction,
  parsePolicy,
  type Blocklist,
  type ModerationPolicy,
  type ModerationPolicyInput,
  type PatternRule,
} from "./policy.ts";
export { PII_KINDS, type PiiKind, type PiiMatch, detectPii, ibanValid, luhnValid, cardBrand, looksLikeSecret } from "./pii.ts";
export { type RuleHit, findRuleHits, placeholder, redactText } from "./rules.ts";
export { DEFAULT_FEATURIZER, type FeaturizerSpec, type SparseFeatures, featurizeBatch, featurizeSparse, normalizeText, tokenize, chunkText, chunkSpans } from "./features.ts";
export { type LinearModelWeights, linearScores } from "./linear.ts";
export {
  CONTRACT_VERSION,
  META_CATEGORIES,
  META_CONTRACT,
  META_FEATURIZER,
  META_THRESHOLDS,
  META_TRAINING,
  OnnxClassifier,
  ReferenceClassifier,
  classifierInfo,
  configureOrtWasm,
  ortModuleInstantiations,
  type ClassifierInfo,
  type ModerationClassifier,
  type OnnxClassifierOptions,
  type OrtLike,
  type OrtWasmOptions,
} from "./classifier.ts";
export { readOnnxModel, type OnnxModelView } from "./onnx-reader.ts";
export { type JudgeFn, type JudgeRequest, type JudgeVerdict, createPromptJudge, llamaGuardPrompt, parseJudgeAnswer, judgeCode } from "./judge.ts";
export { type ExternalModerator, type ExternalOptions, type ExternalResult, createExternalModerator } from "./external.ts";
export {
  moderateInput,
  moderateText,
  type ChatMessage,
  type CheckName,
  type ContentPart,
  type ModerateOptions,
  type ModerationDecision,
  type ModerationEngines,
  type ModerationResult,
} from "./pipeline.ts";
export { OutputGuard, type GuardStep, type OutputGuardOptions, type Span } from "./output-guard.ts";
export { applyPinnedSystemPrompt, applyPolicySystemPrompt, type ClientSystemHandling } from "./system-prompt.ts";
export { decisionLogRecords, type ModerationLogRecord } from "./logging.ts";
export {
  ModerationsRequestSchema,
  PETREL_MODERATION_MODEL,
  buildModerationsResponse,
  handleModerationsRequest,
  moderationsInputs,
  toOpenAIModeration,
  type ModerationsRequest,
  type OpenAIModeration,
  type OpenAIModerationsResponse,
} from "./openai.ts";
