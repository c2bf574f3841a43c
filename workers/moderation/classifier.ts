/**
 * The moderation classifier inside workerd: onnxruntime-web's wasm runtime bundled as a compiled
 * module (a Worker cannot compile wasm from bytes at run time), the `.onnx` file read from R2.
 * Loaded once per isolate, on first use; the worker and the SessionDOs share the code.
 */
import * as ort from "onnxruntime-web/wasm";
import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm";
import { OnnxClassifier, type ModerationClassifier, type OrtLike } from "../../kernels/moderation/index.ts";
import { CLASSIFIER_KEY } from "./keys.ts";


let loading: Promise<ModerationClassifier | undefined> | undefined;
let loadedEtag: string | undefined;

/**
 * The shipped (or replaced) classifier of this bucket, or undefined when the bucket has none: the
 * classifier check is then skipped (logged), as a policy's optional check would be on error.
 */
export function moderationClassifier(bucket: R2Bucket): Promise<ModerationClassifier | undefined> {
  loading ??= load(bucket).catch((e: unknown) => {
    loading = undefined; // a transient R2 failure is retried by the next request
    throw e;
  });
  return loading;
}

async function load(bucket: R2Bucket): Promise<ModerationClassifier | undefined> {
  const object = await bucket.get(CLASSIFIER_KEY);
  if (!object) {
    console.log(JSON.stringify({ level: "warn", component: "moderation", msg: `no classifier at ${CLASSIFIER_KEY} in R2: the classifier check is skipped` }));
    loading = undefined; // look again next time: it may be uploaded later
    return undefined;
  }
  loadedEtag = object.etag;
  return OnnxClassifier.create({ ort: ort as unknown as OrtLike, model: await object.arrayBuffer(), wasmModule: ortWasm });
}

/** The R2 etag of the classifier this isolate runs (for logs and tests). */
export function classifierEtag(): string | undefined {
  return loadedEtag;
}
