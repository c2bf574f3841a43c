/**
 * Puts the shipped moderation classifier (models/moderation/classifier.onnx) into the local R2
 * bucket where the worker loads it from (`npm start` does this on every start, so a retrained
 * model is served at once). For a deployment: `wrangler r2 object put
 * petrel-models/moderation/classifier.onnx --file models/moderation/classifier.onnx --remote`.
 */
import { bucketName, openLocalBucket } from "../cli/upload.ts";
import { CLASSIFIER_KEY } from "../../workers/moderation/keys.ts";
import { shippedModelBytes } from "./node.ts";

export async function uploadClassifierLocally(persistTo: string): Promise<void> {
  const local = await openLocalBucket(persistTo, bucketName());
  try {
    await local.r2.put(CLASSIFIER_KEY, shippedModelBytes(), { httpMetadata: { contentType: "application/octet-stream" } });
  } finally {
    await local.dispose();
  }
}
