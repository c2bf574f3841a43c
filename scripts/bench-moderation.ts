/**
 * `npm run bench:moderation` — what moderation adds to a request, and the classifier's
 * held-out figures.
 *
 *  - input moderation latency per request (p50/p95/mean over many runs) for two request shapes
 *    (a short prompt, and a ~1.3k-character chat with a system prompt and history), with
 *    (a) rules only (blocklist + patterns + PII), (b) rules + classifier via onnxruntime-web,
 *    (c) rules + classifier via the plain-TS reference (for comparison);
 *  - output guard: time added per streamed token, and per check, for a ~1.5k-character answer;
 *  - held-out recall / FPR (split sizes, threshold from training);
 *  - with --worker: a one-token chat request through `wrangler dev` under no checks, rules only,
 *    and rules + classifier (scripts/moderation/worker-latency.ts): what the worker adds end to end.
 *
 *   node --import tsx scripts/bench-moderation.ts [--runs 300] [--worker] [--json]
 */
import { fileURLToPath } from "node:url";
import { parsePolicy, type ModerationPolicy } from "../kernels/moderation/policy.ts";
import { type ChatMessage, type ModerationEngines, moderateInput } from "../kernels/moderation/pipeline.ts";
import { OutputGuard } from "../kernels/moderation/output-guard.ts";
import { ReferenceClassifier } from "../kernels/moderation/classifier.ts";
import { loadShippedClassifier, shippedModelBytes } from "./moderation/node.ts";
import { HELDOUT_PATH, TRAIN_PATH, isHarmful, loadJsonl } from "./moderation/dataset.ts";
import { evaluate } from "./moderation/metrics.ts";
import { measureWorkerLatency } from "./moderation/worker-latency.ts";

interface Stats {
  p50: number;
  p95: number;
  mean: number;
  runs: number;
}

function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { p50: q(0.5), p95: q(0.95), mean: s.reduce((a, b) => a + b, 0) / s.length, runs: s.length };
}

const BLOCKLIST = [
  "kill yourself", "kys", "pipe bomb", "nerve gas", "child porn", "cp links", "school shooting", "ethnic cleansing", "gas the", "lynch",
  "behead", "beheading", "acid attack", "ricin", "sarin", "anthrax", "napalm", "thermite", "molotov", "ghost gun",
  "slur1", "slur2", "slur3", "slur4", "slur5", "slur6", "slur7", "slur8", "slur9", "slur10",
];

const RULES = {
  rules: {
    blocklists: [{ id: "tenant-blocklist", category: "violence" as const, terms: BLOCKLIST }],
    patterns: [
      { id: "ssn", pattern: "\\b\\d{3}-\\d{2}-\\d{4}\\b", action: "redact" as const },
      { id: "internal-host", pattern: "\\b[a-z0-9-]+\\.corp\\.example\\.com\\b", action: "redact" as const },
      { id: "jailbreak", pattern: "\\bignore (all )?previous instructions\\b", action: "flag" as const },
    ],
  },
};

const SHORT: ChatMessage[] = [{ role: "user", content: "Can you suggest a good recipe for a vegetarian lasagna for six people?" }];
const CHAT: ChatMessage[] = [
  { role: "system", content: "You are a helpful assistant for a travel agency. Answer briefly and politely, and always suggest contacting a human agent for bookings." },
  { role: "user", content: "Hi! I'm planning a trip to Portugal in May with my partner. We like food, history and easy hikes." },
  {
    role: "assistant",
    content:
      "That sounds lovely! In May the weather is mild. You could spend three days in Lisbon (Alfama, Belém, the tile museum), a day trip to Sintra for the palaces and forest walks, and then two or three days in Porto for the river, the wine cellars and the old town. For easy hikes, the Seven Hanging Valleys trail in the Algarve is beautiful in spring.",
  },
  { role: "user", content: "Great. My card is 4111 1111 1111 1111 if you need it for the deposit, and my email is ann@example.com." },
  { role: "assistant", content: "Thanks! Please don't share card details here; a human agent will contact you by e-mail to arrange the deposit securely." },
  { role: "user", content: "Understood. Could you suggest a few restaurants in Porto that aren't too touristy, and a good day for the Douro valley trip?" },
];

const ANSWER =
  "Sure! Here are some ideas for Porto. For traditional food, look for small family-run tascas around Bonfim and Campanhã, where locals eat tripas and francesinha without the tourist prices. " +
  "In Foz do Douro, near the ocean, there are excellent seafood grills; go at lunch when the fish is freshest. For something modern, the area around Rua do Almada has several bistros with seasonal menus. " +
  "For the Douro valley, a weekday is best because the wineries are quieter. Take the early train from São Bento to Pinhão, which follows the river for most of the way, and book a tasting in advance. " +
  "In May the vineyards are green and the temperatures are pleasant, so a short walk between two quintas is very doable. " +
  "Bring comfortable shoes, sunscreen and a light jacket for the evening, and remember that the last train back leaves in the early evening. " +
  "If you prefer not to travel by train, several companies run small-group tours with lunch included. Have a wonderful trip!";

async function timeInput(policy: ModerationPolicy, messages: ChatMessage[], engines: ModerationEngines, runs: number): Promise<Stats> {
  for (let i = 0; i < Math.min(50, runs); i++) await moderateInput(policy, messages, engines);
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = await moderateInput(policy, messages, engines);
    samples.push(performance.now() - t0);
    if (r.action !== "allow") throw new Error(`benchmark request was blocked: ${JSON.stringify(r.decisions)}`);
  }
  return stats(samples);
}

async function timeGuard(policy: ModerationPolicy, engines: ModerationEngines, runs: number) {
  const tokens = ANSWER.match(/.{1,4}/gsu) ?? [];
  const perToken: number[] = [];
  const perAnswer: number[] = [];
  for (let r = 0; r < runs; r++) {
    const guard = new OutputGuard({ policy, engines });
    const t0 = performance.now();
    let out = "";
    for (const t of tokens) {
      const s0 = performance.now();
      const step = await guard.push(t);
      perToken.push(performance.now() - s0);
      if (step.stop) throw new Error("benchmark answer was stopped");
      out += step.text;
    }
    out += (await guard.finish()).text;
    perAnswer.push(performance.now() - t0);
    if (out !== ANSWER) throw new Error("guard changed the answer");
  }
  const checks = Math.floor(ANSWER.length / policy.output.stepChars);
  return { tokens: tokens.length, chars: ANSWER.length, checksPerAnswer: checks, perToken: stats(perToken), perAnswer: stats(perAnswer) };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const json = argv.includes("--json");
  const runsArg = argv.indexOf("--runs");
  const runs = runsArg >= 0 ? Number(argv[runsArg + 1]) : 300;
  if (!(runs > 0)) throw new Error("--runs needs a positive number");

  const onnx = await loadShippedClassifier();
  const reference = ReferenceClassifier.fromOnnx(shippedModelBytes());
  const rulesOnly = parsePolicy({ ...RULES, checks: { classifier: false } });
  const withClassifier = parsePolicy({ ...RULES });

  const input: Record<string, Record<string, Stats>> = {};
  for (const [name, messages] of [["short", SHORT], ["chat", CHAT]] as const) {
    input[name] = {
      rulesOnly: await timeInput(rulesOnly, messages, {}, runs),
      rulesClassifierOrt: await timeInput(withClassifier, messages, { classifier: onnx }, runs),
      rulesClassifierTs: await timeInput(withClassifier, messages, { classifier: reference }, runs),
    };
  }
  const guardRuns = Math.max(3, Math.floor(runs / 20));
  const output = {
    rulesOnly: await timeGuard(rulesOnly, {}, guardRuns),
    rulesClassifierOrt: await timeGuard(withClassifier, { classifier: onnx }, guardRuns),
  };

  const heldout = loadJsonl(HELDOUT_PATH);
  const train = loadJsonl(TRAIN_PATH);
  const scores = await onnx.score(heldout.map((i) => i.text));
  const m = evaluate(heldout, scores, onnx.info.thresholds);
  // the deployed path: the pipeline (sentence windows) with only the classifier enabled
  const clfOnly = parsePolicy({ checks: { rules: false } });
  let ptp = 0, pfp = 0;
  for (const it of heldout) {
    const r = await moderateInput(clfOnly, [{ role: "user", content: it.text }], { classifier: onnx });
    if (r.action === "block") isHarmful(it) ? ptp++ : pfp++;
  }
  const training = onnx.info.training as { threshold: number; outOfFold: { recall: number; falsePositiveRate: number } };
  const heldoutFigures = {
    split: { train: train.length, trainHarmful: train.filter(isHarmful).length, heldout: m.items, heldoutHarmful: m.harmful, heldoutBenign: m.benign, heldoutHardNegatives: m.hardNegatives },
    threshold: training.threshold,
    outOfFoldOnTraining: training.outOfFold,
    classifier: { recall: m.recall, falsePositiveRate: m.falsePositiveRate, hardNegativeFpr: m.hardNegativeFpr, precision: m.precision },
    pipelineClassifierOnly: { recall: ptp / m.harmful, falsePositiveRate: pfp / m.benign },
    recallByCategory: Object.fromEntries(Object.entries(m.recallByCategory).map(([c, v]) => [c, { n: v!.n, recall: v!.recall }])),
  };

  let worker: { runs: number; none: Stats; rulesOnly: Stats; rulesClassifier: Stats } | undefined;
  if (argv.includes("--worker")) {
    const workerRuns = Math.min(runs, 100);
    const samples = await measureWorkerLatency(workerRuns);
    worker = { runs: workerRuns, none: stats(samples.none), rulesOnly: stats(samples.rulesOnly), rulesClassifier: stats(samples.rulesClassifier) };
  }

  const result = { node: process.version, runs, input, output, heldout: heldoutFigures, ...(worker && { worker }) };
  if (json) {
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return;
  }
  const ms = (x: number) => `${x.toFixed(3)} ms`;
  const line = (label: string, s: Stats) => `  ${label.padEnd(34)} p50 ${ms(s.p50).padStart(10)}   p95 ${ms(s.p95).padStart(10)}   mean ${ms(s.mean).padStart(10)}`;
  console.log(`moderation bench (Node ${process.version}, ${runs} runs per case)\n`);
  for (const [name, r] of Object.entries(input)) {
    const chars = (name === "short" ? SHORT : CHAT).reduce((a, x) => a + String(x.content).length, 0);
    console.log(`input moderation, ${name} request (${chars} chars):`);
    console.log(line("rules only", r.rulesOnly!));
    console.log(line("rules + classifier (onnxruntime-web)", r.rulesClassifierOrt!));
    console.log(line("rules + classifier (TS reference)", r.rulesClassifierTs!));
  }
  console.log(`\noutput guard, ${output.rulesOnly.chars}-char answer in ${output.rulesOnly.tokens} tokens (window ${withClassifier.output.windowChars}, step ${withClassifier.output.stepChars}):`);
  console.log(line("rules only, per token", output.rulesOnly.perToken));
  console.log(line("rules + classifier, per token", output.rulesClassifierOrt.perToken));
  console.log(line("rules + classifier, whole answer", output.rulesClassifierOrt.perAnswer));
  const h = heldoutFigures;
  console.log(`\nheld-out (${h.split.heldout} items: ${h.split.heldoutHarmful} harmful, ${h.split.heldoutBenign} benign incl. ${h.split.heldoutHardNegatives} hard negatives; training set ${h.split.train} items):`);
  console.log(`  threshold ${h.threshold.toFixed(4)} (chosen by 5-fold CV on training: OOF recall ${h.outOfFoldOnTraining.recall.toFixed(3)}, FPR ${h.outOfFoldOnTraining.falsePositiveRate.toFixed(3)})`);
  console.log(`  classifier: recall ${h.classifier.recall.toFixed(3)}, FPR ${h.classifier.falsePositiveRate.toFixed(3)}, hard-negative FPR ${h.classifier.hardNegativeFpr.toFixed(3)}, precision ${h.classifier.precision.toFixed(3)}`);
  console.log(`  pipeline (classifier only, sentence windows): recall ${h.pipelineClassifierOnly.recall.toFixed(3)}, FPR ${h.pipelineClassifierOnly.falsePositiveRate.toFixed(3)}`);
  console.log(`  recall by category: ${Object.entries(h.recallByCategory).map(([c, v]) => `${c} ${v.recall.toFixed(2)} (${v.n})`).join(", ")}`);
  if (worker) {
    console.log(`\nthrough the worker (wrangler dev), one-token chat request, ${worker.runs} runs per policy:`);
    console.log(line("no checks", worker.none));
    console.log(line("rules only", worker.rulesOnly));
    console.log(line("rules + classifier", worker.rulesClassifier));
    console.log(`  added at p50: rules ${ms(worker.rulesOnly.p50 - worker.none.p50)}, rules + classifier ${ms(worker.rulesClassifier.p50 - worker.none.p50)}`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => {
    console.error(`bench:moderation: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    process.exitCode = 1;
  });
}
