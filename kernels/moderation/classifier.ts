/**
 * The moderation classifier: contract, the ONNX model's metadata, a plain-TS reference
 * implementation (the same arithmetic as the ONNX graph) and the onnxruntime-web runner.
 *
 * Contract (any ONNX model that meets it can replace the shipped one):
 *  - one graph input, float32 [batch, D]: the hashed features of `featurizeBatch` with the
 *    FeaturizerSpec in metadata key `petrel.moderation.featurizer` (JSON; D = spec.dim);
 *  - one graph output, float32 [batch, C]: a probability in [0, 1] per category, columns in the
 *    order of metadata key `petrel.moderation.categories` (JSON array of OpenAI category names,
 *    any subset of the 13; categories it does not list score 0);
 *  - optional `petrel.moderation.thresholds` (JSON {category: threshold}); a category without
 *    one uses 0.5. Policies may override thresholds per category.
 *  - `petrel.moderation.contract` = "1".
 */
import { type Category, type CategoryMap, categoryMap, isCategory } from "./taxonomy.ts";
import { type FeaturizerSpec, featurizeBatch, featurizeSparse } from "./features.ts";
import { type LinearModelWeights, linearScores } from "./linear.ts";
import { type OnnxModelView, readOnnxModel } from "./onnx-reader.ts";

export const CONTRACT_VERSION = "1";
export const META_CONTRACT = "petrel.moderation.contract";
export const META_CATEGORIES = "petrel.moderation.categories";
export const META_FEATURIZER = "petrel.moderation.featurizer";
export const META_THRESHOLDS = "petrel.moderation.thresholds";
export const META_TRAINING = "petrel.moderation.training";

export interface ClassifierInfo {
  /** output columns, in order */
  categories: Category[];
  featurizer: FeaturizerSpec;
  /** decision threshold per category (from the model's metadata; 0.5 where absent) */
  thresholds: CategoryMap<number>;
  inputName: string;
  outputName: string;
  /** free-form training summary from the metadata, if any */
  training?: unknown;
}

export interface ModerationClassifier {
  readonly info: ClassifierInfo;
  /** One score map per text (all 13 categories; those the model does not cover are 0). */
  score(texts: readonly string[]): Promise<CategoryMap<number>[]>;
}

/** Validate a model against the contract and read its metadata. */
export function classifierInfo(view: OnnxModelView): ClassifierInfo {
  if (view.metadata[META_CONTRACT] !== CONTRACT_VERSION) {
    throw new Error(`moderation model: metadata ${META_CONTRACT} must be "${CONTRACT_VERSION}"`);
  }
  const categories = JSON.parse(view.metadata[META_CATEGORIES] ?? "null") as unknown;
  if (!Array.isArray(categories) || categories.length === 0 || !categories.every((c) => typeof c === "string" && isCategory(c))) {
    throw new Error(`moderation model: ${META_CATEGORIES} must list OpenAI category names`);
  }
  const featurizer = JSON.parse(view.metadata[META_FEATURIZER] ?? "null") as FeaturizerSpec | null;
  if (!featurizer || featurizer.name !== "petrel-hashed-ngrams" || featurizer.version !== 1 || !(featurizer.dim > 0)) {
    throw new Error(`moderation model: ${META_FEATURIZER} is missing or names an unknown featurizer`);
  }
  const raw = JSON.parse(view.metadata[META_THRESHOLDS] ?? "{}") as Record<string, number>;
  const thresholds = categoryMap((c) => (typeof raw[c] === "number" ? raw[c]! : 0.5));
  if (view.inputs.length !== 1 || view.outputs.length !== 1) {
    throw new Error("moderation model: expected exactly one graph input and one output");
  }
  const [input] = view.inputs;
  const [output] = view.outputs;
  if (input!.elemType !== 1 || input!.shape.length !== 2 || (typeof input!.shape[1] === "number" && input!.shape[1] !== featurizer.dim)) {
    throw new Error(`moderation model: input must be float32 [batch, ${featurizer.dim}]`);
  }
  if (output!.elemType !== 1 || output!.shape.length !== 2 || (typeof output!.shape[1] === "number" && output!.shape[1] !== categories.length)) {
    throw new Error(`moderation model: output must be float32 [batch, ${categories.length}]`);
  }
  const training = view.metadata[META_TRAINING] ? (JSON.parse(view.metadata[META_TRAINING]) as unknown) : undefined;
  return { categories: categories as Category[], featurizer, thresholds, inputName: input!.name, outputName: output!.name, training };
}

function toMaps(rows: Float32Array | Float64Array, n: number, categories: readonly Category[]): CategoryMap<number>[] {
  const C = categories.length;
  const out: CategoryMap<number>[] = [];
  for (let r = 0; r < n; r++) {
    const m = categoryMap(() => 0);
    categories.forEach((c, j) => {
      m[c] = rows[r * C + j]!;
    });
    out.push(m);
  }
  return out;
}

/**
 * The reference computation in TypeScript (kernels/moderation/linear.ts), the same arithmetic
 * as our ONNX graphs. Used by the parity test against onnxruntime-web, and usable as a
 * fallback classifier where onnxruntime-web is not available.
 */
export class ReferenceClassifier implements ModerationClassifier {
  constructor(
    readonly info: ClassifierInfo,
    readonly weights: LinearModelWeights,
  ) {
    const C = info.categories.length;
    const D = info.featurizer.dim;
    if (weights.W.length !== D * C || weights.b.length !== C) throw new Error("ReferenceClassifier: weight shapes do not match the model info");
    if ((weights.Wg && weights.Wg.length !== D) || (weights.bg && weights.bg.length !== 1)) throw new Error("ReferenceClassifier: gate shapes do not match");
  }

  scoreRow(text: string): Float64Array {
    return linearScores(featurizeSparse(text, this.info.featurizer), this.weights);
  }

  async score(texts: readonly string[]): Promise<CategoryMap<number>[]> {
    const C = this.info.categories.length;
    const rows = new Float64Array(texts.length * C);
    texts.forEach((t, r) => rows.set(this.scoreRow(t), r * C));
    return toMaps(rows, texts.length, this.info.categories);
  }

  /** Read the weights of one of our .onnx files (float initializers W, b and optionally Wg, bg). */
  static fromOnnx(bytes: Uint8Array | ArrayBuffer): ReferenceClassifier {
    const view = readOnnxModel(bytes);
    const info = classifierInfo(view);
    const get = (name: string) => view.initializers.find((t) => t.name === name)?.floats;
    const W = get("W");
    const b = get("b");
    if (!W || !b) throw new Error("ReferenceClassifier.fromOnnx: the model has no float initializers W and b");
    return new ReferenceClassifier(info, { W, b, Wg: get("Wg"), bg: get("bg") });
  }
}

// ---------------------------------------------------------------------------------------------
// onnxruntime-web

/** The parts of the `onnxruntime-web` module we use (structural, so any build of it fits). */
export interface OrtTensorLike {
  readonly dims: readonly number[];
  readonly data: unknown;
}
export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release?(): Promise<void>;
}
export interface OrtLike {
  InferenceSession: { create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSessionLike> };
  Tensor: new (type: "float32", data: Float32Array, dims: readonly number[]) => OrtTensorLike;
  env: { wasm: { numThreads?: number; proxy?: boolean; wasmBinary?: ArrayBufferLike | Uint8Array } };
}

export interface OrtWasmOptions {
  /**
   * workerd: the CompiledWasm module of `onnxruntime-web/dist/ort-wasm-simd-threaded.wasm`
   * (a Worker cannot compile wasm from bytes at run time). ORT is given a dummy binary and its
   * `WebAssembly.instantiate(bytes, imports)` call is answered with this module instead.
   */
  wasmModule?: WebAssembly.Module;
  /** Alternatively the .wasm bytes (Node, browsers); omit both to let ORT locate its file (Node). */
  wasmBinary?: ArrayBuffer | Uint8Array;
}

interface OrtInitState {
  pending: number;
  restore?: () => void;
  instantiations: number;
}
const ortStates = new WeakMap<object, OrtInitState>();

/** How many times ORT's runtime was instantiated from a supplied WebAssembly.Module (for tests). */
export function ortModuleInstantiations(ort: OrtLike): number {
  return ortStates.get(ort)?.instantiations ?? 0;
}

/**
 * Configure onnxruntime-web's wasm backend once per ORT module: single thread, no proxy worker,
 * and the runtime from `wasmModule`/`wasmBinary` when given. Must run before the first
 * InferenceSession of that module is created (ORT initializes its runtime only once).
 */
export function configureOrtWasm(ort: OrtLike, options: OrtWasmOptions = {}): void {
  if (ortStates.has(ort)) return;
  const state: OrtInitState = { pending: 0, instantiations: 0 };
  ortStates.set(ort, state);
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  if (options.wasmModule) {
    const module = options.wasmModule;
    const dummy = new ArrayBuffer(8);
    ort.env.wasm.wasmBinary = dummy;
    const wasm = (globalThis as unknown as { WebAssembly: { instantiate: (...args: unknown[]) => Promise<unknown> } }).WebAssembly;
    const original = wasm.instantiate;
    const patched = function (this: unknown, ...args: unknown[]): Promise<unknown> {
      const src = args[0];
      const isDummy = src === dummy || (ArrayBuffer.isView(src) && src.buffer === dummy);
      if (isDummy) {
        state.instantiations++;
        return original.call(wasm, module, args[1]).then((instance) => ({ module, instance }));
      }
      return original.apply(wasm, args);
    };
    wasm.instantiate = patched;
    state.restore = () => {
      if (wasm.instantiate === patched) wasm.instantiate = original;
    };
  } else if (options.wasmBinary) {
    ort.env.wasm.wasmBinary = options.wasmBinary;
  }
}

export interface OnnxClassifierOptions extends OrtWasmOptions {
  /** the onnxruntime-web module (`import * as ort from "onnxruntime-web"`), passed in by the host */
  ort: OrtLike;
  /** the .onnx bytes (e.g. `await (await env.MODELS.get(key)).arrayBuffer()`) */
  model: Uint8Array | ArrayBuffer;
  /** rows per ORT run (default 32) */
  maxBatch?: number;
}

/** The classifier run by onnxruntime-web (wasm EP, one thread). */
export class OnnxClassifier implements ModerationClassifier {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly info: ClassifierInfo,
    private readonly ort: OrtLike,
    private readonly session: OrtSessionLike,
    private readonly maxBatch: number,
  ) {}

  static async create(options: OnnxClassifierOptions): Promise<OnnxClassifier> {
    const bytes = options.model instanceof Uint8Array ? options.model : new Uint8Array(options.model);
    const info = classifierInfo(readOnnxModel(bytes));
    configureOrtWasm(options.ort, options);
    const state = ortStates.get(options.ort)!;
    state.pending++;
    let session: OrtSessionLike;
    try {
      session = await options.ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    } finally {
      // ORT instantiates its runtime during the first create; after that the patch is not needed.
      if (--state.pending === 0 && state.restore) {
        state.restore();
        state.restore = undefined;
      }
    }
    return new OnnxClassifier(info, options.ort, session, options.maxBatch ?? 32);
  }

  async score(texts: readonly string[]): Promise<CategoryMap<number>[]> {
    const out: CategoryMap<number>[] = [];
    for (let start = 0; start < texts.length; start += this.maxBatch) {
      const batch = texts.slice(start, start + this.maxBatch);
      out.push(...(await this.runBatch(batch)));
    }
    return out;
  }

  private runBatch(texts: readonly string[]): Promise<CategoryMap<number>[]> {
    const { featurizer, inputName, outputName, categories } = this.info;
    const job = this.queue.then(async () => {
      const x = new this.ort.Tensor("float32", featurizeBatch(texts, featurizer), [texts.length, featurizer.dim]);
      const result = await this.session.run({ [inputName]: x });
      const y = result[outputName];
      if (!y || !(y.data instanceof Float32Array)) throw new Error("moderation model: output is not a float32 tensor");
      return toMaps(y.data, texts.length, categories);
    });
    this.queue = job.catch(() => undefined);
    return job;
  }

  async release(): Promise<void> {
    await this.session.release?.();
  }
}

