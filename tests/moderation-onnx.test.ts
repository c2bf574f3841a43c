/**
 * The classifier's ONNX path end to end: our protobuf/ONNX encoder, our reader, onnxruntime-web
 * (wasm EP, one thread) running the files, and ORT's scores equal to the TypeScript reference
 * computation of the same weights. Training is deterministic.
 */
import { describe, expect, it } from "vitest";
import { encodeOnnxModel, gatedLinearModel, linearSigmoidModel } from "../scripts/moderation/onnx-writer.ts";
import { ProtoWriter } from "../scripts/moderation/protobuf.ts";
import { readOnnxModel } from "../kernels/moderation/onnx-reader.ts";
import {
  CONTRACT_VERSION,
  META_CATEGORIES,
  META_CONTRACT,
  META_FEATURIZER,
  META_THRESHOLDS,
  OnnxClassifier,
  ReferenceClassifier,
  classifierInfo,
} from "../kernels/moderation/classifier.ts";
import { DEFAULT_FEATURIZER, type FeaturizerSpec, featurizeBatch, featurizeSparse } from "../kernels/moderation/features.ts";
import { linearScores } from "../kernels/moderation/linear.ts";
import { CATEGORIES } from "../kernels/moderation/taxonomy.ts";
import { loadOrt, loadShippedClassifier, shippedModelBytes } from "../scripts/moderation/node.ts";
import { HELDOUT_PATH, TRAIN_PATH, loadJsonl, parseJsonl } from "../scripts/moderation/dataset.ts";
import { trainAndEncode } from "../scripts/moderation/train.ts";
import { DEFAULT_TRAIN_CONFIG, rng } from "../scripts/moderation/trainer.ts";

const TOL = 2e-5;

function randomWeights(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function metadataFor(spec: FeaturizerSpec, categories: readonly string[] = CATEGORIES): Record<string, string> {
  return {
    [META_CONTRACT]: CONTRACT_VERSION,
    [META_CATEGORIES]: JSON.stringify(categories),
    [META_FEATURIZER]: JSON.stringify(spec),
    [META_THRESHOLDS]: JSON.stringify(Object.fromEntries(categories.map((c) => [c, 0.5]))),
  };
}

describe("protobuf writer", () => {
  it("encodes varints, negative int64, floats and nested messages by the wire format", () => {
    const w = new ProtoWriter();
    w.int(1, 300).int(2, -1).float(3, 1.5).string(4, "hé").message(5, (m) => m.int(1, 0));
    expect([...w.finish()]).toEqual([
      0x08, 0xac, 0x02, // field 1 varint 300
      0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, // field 2 varint -1 (10 bytes)
      0x1d, 0x00, 0x00, 0xc0, 0x3f, // field 3 fixed32 1.5f
      0x22, 0x03, 0x68, 0xc3, 0xa9, // field 4 "hé" (UTF-8)
      0x2a, 0x02, 0x08, 0x00, // field 5 { field 1: 0 }
    ]);
  });
});

describe("ONNX writer and reader", () => {
  it("round-trips a model through our reader", () => {
    const spec = { ...DEFAULT_FEATURIZER, dim: 16 };
    const W = randomWeights(16 * 13, 1);
    const b = randomWeights(13, 2);
    const bytes = linearSigmoidModel({ weights: W, bias: b, inputDim: 16, outputDim: 13, metadata: metadataFor(spec) });
    const view = readOnnxModel(bytes);
    expect(view.irVersion).toBe(8);
    expect(view.opset).toEqual([{ domain: "", version: 17 }]);
    expect(view.nodes.map((n) => n.opType)).toEqual(["MatMul", "Add", "Sigmoid"]);
    expect(view.inputs).toEqual([{ name: "features", elemType: 1, shape: ["batch", 16] }]);
    expect(view.outputs).toEqual([{ name: "scores", elemType: 1, shape: ["batch", 13] }]);
    expect(view.initializers.find((t) => t.name === "W")!.dims).toEqual([16, 13]);
    expect(view.initializers.find((t) => t.name === "W")!.floats).toEqual(W);
    expect(view.initializers.find((t) => t.name === "b")!.floats).toEqual(b);
    expect(JSON.parse(view.metadata[META_FEATURIZER]!)).toEqual(spec);
    expect(classifierInfo(view).categories).toEqual([...CATEGORIES]);
  });

  it("rejects models that break the contract", () => {
    const spec = { ...DEFAULT_FEATURIZER, dim: 8 };
    const ok = (meta: Record<string, string>, inputDim = 8) =>
      classifierInfo(readOnnxModel(linearSigmoidModel({ weights: new Float32Array(inputDim * 13), bias: new Float32Array(13), inputDim, outputDim: 13, metadata: meta })));
    expect(() => ok(metadataFor(spec))).not.toThrow();
    expect(() => ok({ ...metadataFor(spec), [META_CONTRACT]: "2" })).toThrow(/contract/);
    expect(() => ok({ ...metadataFor(spec), [META_CATEGORIES]: JSON.stringify(["violence", "spam"]) })).toThrow(/category/);
    expect(() => ok(metadataFor(spec), 9)).toThrow(/input must be float32 \[batch, 8\]/);
    const { [META_FEATURIZER]: _, ...noSpec } = metadataFor(spec);
    expect(() => ok(noSpec)).toThrow(/featurizer/);
  });

  it("a model covering a subset of categories scores the others 0", async () => {
    const spec = { ...DEFAULT_FEATURIZER, dim: 32 };
    const cats = ["violence", "hate"];
    const bytes = linearSigmoidModel({ weights: randomWeights(32 * 2, 3), bias: Float32Array.of(0.5, -0.5), inputDim: 32, outputDim: 2, metadata: metadataFor(spec, cats) });
    const ort = await OnnxClassifier.create({ ort: await loadOrt(), model: bytes });
    const [s] = await ort.score(["some text"]);
    expect(s!.violence).toBeGreaterThan(0);
    expect(s!.hate).toBeGreaterThan(0);
    expect(s!.sexual).toBe(0);
    expect(s!["self-harm"]).toBe(0);
  });
});

describe("onnxruntime-web runs our graphs like the TypeScript reference", () => {
  const texts = [
    "How do I kill the process that hangs?",
    "I will find you and hurt you",
    "Breast cancer screening saves lives.",
    "",
    "ünïcödé — ταυτότητα 🚀 mixed 123 k1ll",
    "a ".repeat(400),
  ];

  it("plain linear graph (MatMul + Add + Sigmoid) with random weights, batch of texts", async () => {
    const spec = { ...DEFAULT_FEATURIZER, dim: 512 };
    const W = randomWeights(512 * 13, 11, 3);
    const b = randomWeights(13, 12);
    const bytes = linearSigmoidModel({ weights: W, bias: b, inputDim: 512, outputDim: 13, metadata: metadataFor(spec) });
    const clf = await OnnxClassifier.create({ ort: await loadOrt(), model: bytes, maxBatch: 4 });
    const got = await clf.score(texts);
    texts.forEach((t, i) => {
      const want = linearScores(featurizeSparse(t, spec), { W, b });
      CATEGORIES.forEach((c, j) => expect(Math.abs(got[i]![c] - want[j]!)).toBeLessThan(TOL));
    });
  });

  it("gated graph (two heads, ReduceMax, Div, Mul) with random weights", async () => {
    const spec = { ...DEFAULT_FEATURIZER, dim: 256, norm: "none" as const };
    const weights = { W: randomWeights(256 * 13, 21, 2), b: randomWeights(13, 22), Wg: randomWeights(256, 23, 2), bg: randomWeights(1, 24) };
    const bytes = gatedLinearModel({ weights: weights.W, bias: weights.b, gateWeights: weights.Wg, gateBias: weights.bg, inputDim: 256, outputDim: 13, metadata: metadataFor(spec) });
    const ort = await OnnxClassifier.create({ ort: await loadOrt(), model: bytes });
    const ref = ReferenceClassifier.fromOnnx(bytes);
    const [a, b] = [await ort.score(texts), await ref.score(texts)];
    texts.forEach((t, i) => {
      const direct = linearScores(featurizeSparse(t, spec), weights);
      CATEGORIES.forEach((c, j) => {
        expect(Math.abs(a[i]![c] - b[i]![c])).toBeLessThan(TOL);
        expect(Math.abs(b[i]![c] - direct[j]!)).toBeLessThan(1e-12);
      });
      // the top category scores the gate itself
      const max = Math.max(...CATEGORIES.map((c) => a[i]![c]));
      const gate = linearScores(featurizeSparse(t, spec), { W: weights.Wg, b: weights.bg })[0]!;
      expect(Math.abs(max - gate)).toBeLessThan(TOL);
    });
  });

  it("the shipped model: ORT equals the reference on every held-out and 200 training texts", async () => {
    const bytes = shippedModelBytes();
    const ort = await loadShippedClassifier({ model: bytes });
    const ref = ReferenceClassifier.fromOnnx(bytes);
    const corpus = [...loadJsonl(HELDOUT_PATH), ...loadJsonl(TRAIN_PATH).slice(0, 200)].map((i) => i.text);
    const [a, b] = [await ort.score(corpus), await ref.score(corpus)];
    let worst = 0;
    corpus.forEach((_, i) => CATEGORIES.forEach((c) => (worst = Math.max(worst, Math.abs(a[i]![c] - b[i]![c])))));
    expect(worst).toBeLessThan(TOL);
    expect(ort.info.featurizer).toEqual(ref.info.featurizer);
    expect(featurizeBatch(["x"], ort.info.featurizer).length).toBe(ort.info.featurizer.dim);
  });
});

describe("training", () => {
  it("is deterministic and writes a loadable model (small configuration)", async () => {
    const items = loadJsonl(TRAIN_PATH);
    // a quick configuration on a fixed subset: every 4th item
    const subset = items.filter((_, i) => i % 4 === 0);
    const spec = { ...DEFAULT_FEATURIZER, dim: 1024 };
    const cfg = { ...DEFAULT_TRAIN_CONFIG, featurizer: spec, epochs: 40, folds: 3 };
    const jsonl = subset.map((i) => JSON.stringify({ text: i.text, categories: i.categories })).join("\n");
    expect(parseJsonl(jsonl).length).toBe(subset.length);
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "petrel-mod-"));
    writeFileSync(join(dir, "train.jsonl"), jsonl);
    const one = trainAndEncode(join(dir, "train.jsonl"), cfg, () => {});
    const two = trainAndEncode(join(dir, "train.jsonl"), cfg, () => {});
    expect(Buffer.from(one.bytes).equals(Buffer.from(two.bytes))).toBe(true);
    const clf = await OnnxClassifier.create({ ort: await loadOrt(), model: one.bytes });
    expect(clf.info.featurizer.dim).toBe(1024);
    expect(clf.info.thresholds.violence).toBeCloseTo(one.training.threshold, 6);
    // it learned something: the training items it was fit on separate clearly
    const scores = await clf.score(subset.map((i) => i.text));
    const max = scores.map((s) => Math.max(...CATEGORIES.map((c) => s[c])));
    const harmfulMean = max.filter((_, i) => subset[i]!.labels.size > 0).reduce((a, b) => a + b, 0) / subset.filter((i) => i.labels.size > 0).length;
    const benignMean = max.filter((_, i) => subset[i]!.labels.size === 0).reduce((a, b) => a + b, 0) / subset.filter((i) => i.labels.size === 0).length;
    expect(harmfulMean - benignMean).toBeGreaterThan(0.4);
  });

  it("the shipped model's metadata records a training-only threshold choice", () => {
    const info = classifierInfo(readOnnxModel(shippedModelBytes()));
    const training = info.training as { items: number; folds: number; targetFpr: number; threshold: number; outOfFold: { falsePositiveRate: number } };
    expect(training.items).toBe(loadJsonl(TRAIN_PATH).length);
    expect(training.outOfFold.falsePositiveRate).toBeLessThanOrEqual(training.targetFpr);
    for (const c of CATEGORIES) expect(info.thresholds[c]).toBeCloseTo(training.threshold, 9);
  });
});

describe("encodeOnnxModel", () => {
  it("writes string/int/ints attributes that ORT accepts (ReduceMax keepdims=0 over axis 1)", async () => {
    const bytes = encodeOnnxModel({
      irVersion: 8,
      opset: [{ version: 17 }],
      graph: {
        name: "g",
        nodes: [{ opType: "ReduceMax", inputs: ["x"], outputs: ["y"], attributes: [{ name: "axes", ints: [1] }, { name: "keepdims", i: 0 }] }],
        initializers: [],
        inputs: [{ name: "x", shape: [2, 3] }],
        outputs: [{ name: "y", shape: [2] }],
      },
    });
    const ort = await loadOrt();
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({ x: new ort.Tensor("float32", Float32Array.of(1, 5, 2, -1, -3, -2), [2, 3]) });
    expect([...(out.y!.data as Float32Array)]).toEqual([5, -1]);
  });
});
