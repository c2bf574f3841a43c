/** Where moderation lives in storage (shared with the Node scripts, so no Worker-only imports here). */

/** The classifier in the models bucket (R2): `npm start` puts the shipped one there. */
export const CLASSIFIER_KEY = "moderation/classifier.onnx";

/** A tenant's policy set at run time, in the KEYS namespace (KV). */
export const policyKvKey = (tenant: string) => `moderation-policy:${tenant}`;
