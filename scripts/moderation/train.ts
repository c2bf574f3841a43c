/**
 * `npm run train:moderation` — train the shipped moderation classifier.
 *
 * Reads data/moderation/train.jsonl only (the held-out set is never opened here), picks the
 * decision threshold by k-fold cross-validation on the training set, fits the final model on
 * all training items and writes models/moderation/classifier.onnx (+ training-report.json).
 * Deterministic: the same data and options give byte-identical files.
 *
 *   node --import tsx scripts/moderation/train.ts [--dim 8192] [--epochs 300] [--seed 7]
 *        [--target-fpr 0.05] [--data PATH] [--out PATH] [--report PATH]
 */
import { writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";
import { DEFAULT_FEATURIZER, type FeaturizerSpec } from "../../kernels/moderation/features.ts";
import { CONTRACT_VERSION, META_CATEGORIES, META_CONTRACT, META_FEATURIZER, META_THRESHOLDS, META_TRAINING } from "../../kernels/moderation/classifier.ts";
import { TRAIN_PATH, isHarmful, loadJsonl } from "./dataset.ts";
import { DEFAULT_TRAIN_CONFIG, type TrainConfig, train } from "./trainer.ts";
import { gatedLinearModel } from "./onnx-writer.ts";
import { evaluate } from "./metrics.ts";

export const MODEL_PATH = fileURLToPath(new URL("../../models/moderation/classifier.onnx", import.meta.url));
export const REPORT_PATH = fileURLToPath(new URL("../../models/moderation/training-report.json", import.meta.url));

function parseArgs(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Error(`${a} needs a value`);
    out[a.slice(2)] = v;
    i++;
  }
  return out;
}

export function trainAndEncode(dataPath: string, cfg: TrainConfig, log: (s: string) => void) {
  const items = loadJsonl(dataPath);
  const harmful = items.filter(isHarmful).length;
  log(`training set: ${items.length} items (${harmful} harmful, ${items.length - harmful} benign)`);
  const result = train(items, cfg, log);
  const oof = evaluate(items, result.oofScores, result.thresholds);
  const training = {
    algorithm: "logistic-regression gate p(harmful) × one-vs-rest logistic heads p(category | harmful), full-batch Adam, L2",
    items: items.length,
    harmful,
    benign: items.length - harmful,
    epochs: cfg.epochs,
    learningRate: cfg.learningRate,
    l2: cfg.l2,
    positiveWeightPower: cfg.positiveWeightPower,
    seed: cfg.seed,
    folds: cfg.folds,
    targetFpr: cfg.targetFpr,
    threshold: result.choice.threshold,
    outOfFold: { recall: oof.recall, falsePositiveRate: oof.falsePositiveRate, hardNegativeFpr: oof.hardNegativeFpr },
    gateLoss: result.gateLoss,
    categoryLoss: result.categoryLoss,
  };
  const bytes = gatedLinearModel({
    weights: result.weights,
    bias: result.bias,
    gateWeights: result.gateWeights,
    gateBias: result.gateBias,
    inputDim: cfg.featurizer.dim,
    outputDim: result.categories.length,
    doc: "Petrel moderation classifier: hashed word/char n-grams → gated linear model, one probability per OpenAI category. Contract: kernels/moderation/README.md.",
    metadata: {
      [META_CONTRACT]: CONTRACT_VERSION,
      [META_CATEGORIES]: JSON.stringify(result.categories),
      [META_FEATURIZER]: JSON.stringify(cfg.featurizer),
      [META_THRESHOLDS]: JSON.stringify(result.thresholds),
      [META_TRAINING]: JSON.stringify(training),
    },
  });
  return { bytes, training, result, oof };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const featurizer: FeaturizerSpec = { ...DEFAULT_FEATURIZER, ...(args.dim ? { dim: Number(args.dim) } : {}) };
  const cfg: TrainConfig = {
    ...DEFAULT_TRAIN_CONFIG,
    featurizer,
    ...(args.epochs ? { epochs: Number(args.epochs) } : {}),
    ...(args.seed ? { seed: Number(args.seed) } : {}),
    ...(args["target-fpr"] ? { targetFpr: Number(args["target-fpr"]) } : {}),
  };
  const out = args.out ?? MODEL_PATH;
  const reportPath = args.report ?? REPORT_PATH;
  const t0 = performance.now();
  const { bytes, training, oof } = trainAndEncode(args.data ?? TRAIN_PATH, cfg, (s) => console.log(s));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, bytes);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  const report = { model: out.replace(/^.*\/models\//, "models/"), bytes: bytes.length, sha256, featurizer, training, outOfFoldByCategory: oof.recallByCategory };
  writeFileSync(reportPath, JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote ${out} (${bytes.length} bytes, sha256 ${sha256.slice(0, 16)}…) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => {
    console.error(`train:moderation: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  });
}
