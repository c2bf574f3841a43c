/**
 * `npm run bench [-- options]`: our backends side by side with llama.cpp on the same GGUF files.
 *
 * Synthesizes (or reuses) the benchmark models in .cache/bench/, then for each model measures, in
 * one run and one process per measurement: prompt tokens/s (one batched prefill of the same
 * prompt ids) and decode tokens/s (greedy, one token per step) of
 *   - our `wasm` backend (`petrel bench --backend wasm`, each --threads count),
 *   - our `js` reference backend (shorter prompt/gen; skipped on the TinyLlama shape unless --js-big),
 *   - llama.cpp through node-llama-cpp (scripts/bench/peer-runner.ts, each --threads count),
 * alternating peer and ours and repeating each --reps times (the table shows medians), plus the
 * ratios ours/llama.cpp at the same thread count and memory (peak RSS, and peak RSS minus RSS
 * before loading: "the memory the model adds"). Every run's JSON goes to .cache/bench/results/.
 *
 * Options:
 *   --models LIST     smollm2-q8_0,smollm2-q4_0,tinyllama-q4_0,tinyllama-q4_k | smollm2 | tinyllama | all (default all)
 *   --backends LIST   wasm,js,llama.cpp (default all three)
 *   --threads LIST    thread counts for wasm and llama.cpp (default 1,2; js runs on 1)
 *   --reps N          runs per measurement (default 3); --js-reps N (default 1)
 *   --prompt N --gen N            (default 128 / 64)
 *   --js-prompt N --js-gen N      js on the SmolLM2 shape (default 32 / 16)
 *   --js-big          also run js on the TinyLlama shape (prompt 8 / gen 4)
 *   --timeout S       per measurement process (default 900)
 *   --peer-dir DIR    where node-llama-cpp is (or gets) installed (default .cache/peer)
 *   --no-install      do not install node-llama-cpp when missing (llama.cpp rows become 'unavailable')
 *   --json            print the whole result as JSON on stdout (progress stays on stderr)
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs, Flags } from "./cli/args.ts";
import { ensureModel, findVocab, modelFacts, selectModels, type BenchModel, type ModelFacts } from "./bench/models.ts";
import { ensurePeer, PEER_VERSION } from "./bench/peer.ts";
import type { PeerInfo, PeerResult } from "./bench/peer-runner.ts";
import { benchPromptIds, writePromptIds } from "./bench/prompt.ts";
import { runJsonChild } from "./bench/spawn.ts";
import { commonPrefix, median, spreadPct } from "./bench/stats.ts";

const root = new URL("..", import.meta.url).pathname;
const BACKENDS = ["wasm", "js", "llama.cpp"] as const;
type BackendKind = (typeof BACKENDS)[number];

interface Config {
  backend: BackendKind;
  threads: number;
  prompt: number;
  gen: number;
  reps: number;
}

interface Sample {
  pp_tok_s: number;
  tg_tok_s: number;
  peak_rss_mb: number;
  rss_before_load_mb?: number;
  tokens?: number[];
  wall_s: number;
  /** 1-minute load average when the measurement started (the machine is shared). */
  loadavg_1m: number;
}

interface Row {
  model: string;
  backend: BackendKind;
  threads: number;
  prompt: number;
  gen: number;
  status: "ok" | "unavailable" | "failed" | "skipped";
  note?: string;
  runs: number;
  pp_tok_s?: number;
  tg_tok_s?: number;
  pp_spread_pct?: number;
  tg_spread_pct?: number;
  /** ours / llama.cpp at the same thread count (js: against llama.cpp 1 thread). */
  pp_vs_llama_cpp?: number;
  tg_vs_llama_cpp?: number;
  peak_rss_mb?: number;
  rss_before_load_mb?: number;
  /** "measured" in the measuring process, or "estimated" by a separate process (scripts/bench/ours-baseline.ts). */
  rss_before_load_source?: "measured" | "estimated";
  model_adds_mb?: number;
  /** Median 1-minute load average at the starts of the runs (the machine is shared). */
  loadavg_1m?: number;
  /** Leading greedy tokens equal to llama.cpp's (1 thread), where ours reports its tokens. */
  tokens_agree_with_llama_cpp?: number;
  samples: Sample[];
}

interface ModelEntry {
  name: string;
  description: string;
  file: string;
  facts: ModelFacts;
  /** Our KV-cache for prompt + gen + 1 positions in F32 (what `petrel bench` allocates). */
  kv_cache_mb: number;
  floors?: { pp: number; tg: number };
}

const log = (s: string) => process.stderr.write(s + "\n");

function list(raw: string | undefined, fallback: string): string[] {
  return (raw ?? fallback).split(",").map((s) => s.trim()).filter(Boolean);
}

async function main(): Promise<void> {
  const flags = new Flags(parseArgs(process.argv.slice(2), ["json", "js-big", "no-install"]), [
    "models", "backends", "threads", "reps", "js-reps", "prompt", "gen", "js-prompt", "js-gen", "js-big", "timeout", "no-install", "json", "peer-dir",
  ]);
  const models = selectModels(flags.string("models"));
  const backends = list(flags.string("backends"), BACKENDS.join(","));
  for (const b of backends) if (!(BACKENDS as readonly string[]).includes(b)) throw new Error(`unknown backend '${b}' (known: ${BACKENDS.join(", ")})`);
  const has = (b: BackendKind) => backends.includes(b);
  const threadCounts = list(flags.string("threads"), "1,2").map(Number);
  if (threadCounts.some((t) => !Number.isInteger(t) || t < 1)) throw new Error("--threads must list positive integers");
  const int = (name: string, dflt: number) => flags.number(name, { integer: true, min: 1 }) ?? dflt;
  const reps = int("reps", 3);
  const jsReps = int("js-reps", 1);
  const nPrompt = int("prompt", 128);
  const nGen = int("gen", 64);
  const jsPrompt = int("js-prompt", 32);
  const jsGen = int("js-gen", 16);
  const timeoutS = int("timeout", 900);
  const cacheDir = join(root, ".cache/bench");
  const peerDir = resolve(root, flags.string("peer-dir") ?? ".cache/peer");
  const notes: string[] = [];
  const startedAt = new Date();

  // The peer: installed on demand, its system info read once.
  let peerUnavailable: string | undefined;
  let peerInfo: PeerInfo | undefined;
  if (has("llama.cpp")) {
    peerUnavailable = await ensurePeer(peerDir, { install: !flags.bool("no-install"), log });
    if (!peerUnavailable) {
      const info = await runJsonChild<PeerInfo>(process.execPath, ["--import", "tsx", "scripts/bench/peer-runner.ts", "--info", "--peer-dir", peerDir], { cwd: root, timeoutS: 120 });
      if (info.ok) peerInfo = info.value;
      else peerUnavailable = `node-llama-cpp failed to start: ${info.error}`;
    }
    if (peerInfo) log(`llama.cpp ${peerInfo.llama_cpp_release} via node-llama-cpp ${peerInfo.node_llama_cpp}: ${peerInfo.system_info}`);
    else log(`llama.cpp unavailable: ${peerUnavailable}`);
  }

  const vocab = findVocab(root);
  const entries: ModelEntry[] = [];
  const rows: Row[] = [];
  // An error that no other model will avoid (e.g. the wasm backend's module is missing): not retried.
  const globallyUnavailable = new Map<string, string>();
  let oursTakesTokens = true;
  const baselines = new Map<string, number | undefined>();

  for (const m of models) {
    let file: string;
    try {
      file = await ensureModel(m, { root, cacheDir, vocab, log });
    } catch (e) {
      log(`${m.name}: ${(e as Error).message}`);
      notes.push(`${m.name}: not measured: ${(e as Error).message.split("\n")[0]}`);
      continue;
    }
    const facts = await modelFacts(file);
    const entry: ModelEntry = {
      name: m.name,
      description: m.description,
      file,
      facts,
      kv_cache_mb: (2 * facts.n_layer * (nPrompt + nGen + 1) * facts.kv_dim * 4) / (1024 * 1024),
      floors: m.floors,
    };
    entries.push(entry);

    const configs: Config[] = [];
    for (const t of threadCounts) {
      if (has("llama.cpp")) configs.push({ backend: "llama.cpp", threads: t, prompt: nPrompt, gen: nGen, reps });
      if (has("wasm")) configs.push({ backend: "wasm", threads: t, prompt: nPrompt, gen: nGen, reps });
    }
    const jsRow = has("js") && (!m.big || flags.bool("js-big"));
    if (jsRow) configs.push({ backend: "js", threads: 1, prompt: m.big ? 8 : jsPrompt, gen: m.big ? 4 : jsGen, reps: jsReps });

    const modelRows = new Map<Config, Row>();
    for (const c of configs) {
      const row: Row = { model: m.name, backend: c.backend, threads: c.threads, prompt: c.prompt, gen: c.gen, status: "ok", runs: 0, samples: [] };
      if (c.backend === "llama.cpp" && peerUnavailable) Object.assign(row, { status: "unavailable", note: peerUnavailable });
      const global = globallyUnavailable.get(c.backend);
      if (global) Object.assign(row, { status: "unavailable", note: global });
      modelRows.set(c, row);
    }
    if (has("js") && !jsRow) {
      rows.push({
        model: m.name, backend: "js", threads: 1, prompt: 0, gen: 0, status: "skipped", runs: 0, samples: [],
        note: "js reference skipped on this shape (~8× SmolLM2's weights: minutes per run); --js-big runs it at prompt 8 / gen 4",
      });
    }

    const promptFiles = new Map<number, string>();
    const promptFile = (n: number) => {
      if (!promptFiles.has(n)) promptFiles.set(n, writePromptIds(join(cacheDir, "prompts"), n, facts.n_vocab));
      return promptFiles.get(n)!;
    };

    const measure = async (c: Config, row: Row, rep: number): Promise<void> => {
      const loadavg_1m = loadavg()[0]!;
      const label = `${m.name} ${c.backend} t${c.threads} ${c.prompt}/${c.gen} run ${rep + 1}/${c.reps}`;
      if (c.backend === "llama.cpp") {
        const r = await runJsonChild<PeerResult>(
          process.execPath,
          ["--import", "tsx", "scripts/bench/peer-runner.ts", "--model", file, "--prompt-ids", promptFile(c.prompt), "--gen", String(c.gen), "--threads", String(c.threads), "--peer-dir", peerDir],
          { cwd: root, timeoutS },
        );
        if (!r.ok) return fail(row, label, r.error!);
        const v = r.value!;
        row.samples.push({ pp_tok_s: v.pp_tok_s, tg_tok_s: v.tg_tok_s, peak_rss_mb: v.peak_rss_mb, rss_before_load_mb: v.rss_before_load_mb, tokens: v.tokens, wall_s: r.wall_s, loadavg_1m });
      } else {
        const base = ["bench", "--model", file, "--backend", c.backend, "--prompt", String(c.prompt), "--gen", String(c.gen), "--json"];
        if (c.backend === "wasm") base.push("--threads", String(c.threads));
        const ids = benchPromptIds(c.prompt, facts.n_vocab);
        let r = await runJsonChild<Record<string, unknown>>(join(root, "scripts/petrel"), oursTakesTokens ? [...base, "--tokens", ids.join(",")] : base, { cwd: root, timeoutS });
        if (!r.ok && oursTakesTokens && /unknown option --tokens/.test(r.error ?? "")) {
          // `petrel bench` builds the same ids itself (scripts/bench/prompt.ts mirrors its formula).
          oursTakesTokens = false;
          r = await runJsonChild(join(root, "scripts/petrel"), base, { cwd: root, timeoutS });
        }
        if (!r.ok) return fail(row, label, r.error!);
        const v = r.value!;
        row.samples.push({
          pp_tok_s: Number(v.pp_tok_s),
          tg_tok_s: Number(v.tg_tok_s),
          peak_rss_mb: Number(v.peak_rss_mb),
          rss_before_load_mb: typeof v.rss_before_load_mb === "number" ? v.rss_before_load_mb : undefined,
          tokens: Array.isArray(v.tokens) ? (v.tokens as number[]) : undefined,
          wall_s: r.wall_s,
          loadavg_1m,
        });
      }
      const s = row.samples.at(-1)!;
      row.runs = row.samples.length;
      log(`  ${label}: prompt ${s.pp_tok_s.toFixed(1)} tok/s, decode ${s.tg_tok_s.toFixed(2)} tok/s, peak RSS ${s.peak_rss_mb.toFixed(0)} MB (load avg ${loadavg_1m.toFixed(1)})`);
    };
    const fail = (row: Row, label: string, error: string) => {
      log(`  ${label}: FAILED: ${error}`);
      // A failure on the first run means this backend can't run this model now; a later one is noise.
      if (row.samples.length === 0) {
        const unavailable = /Cannot find module|ERR_MODULE_NOT_FOUND|must be js or wasm|not available|unsupported|not supported|not implemented/i.test(error);
        row.status = unavailable ? "unavailable" : "failed";
        row.note = error;
        if (/Cannot find module|ERR_MODULE_NOT_FOUND|must be js or wasm/.test(error)) globallyUnavailable.set(row.backend, error);
      } else {
        row.note = `${row.note ? row.note + "; " : ""}run ${row.samples.length + 1} failed: ${error}`;
      }
    };

    // Alternate peer and ours at each thread count; flip which goes first on every other run.
    const maxReps = Math.max(...configs.map((c) => c.reps));
    for (let rep = 0; rep < maxReps; rep++) {
      const order = rep % 2 === 0 ? configs : pairwiseSwapped(configs);
      for (const c of order) {
        const row = modelRows.get(c)!;
        if (rep >= c.reps || row.status !== "ok" || (rep > 0 && row.samples.length === 0)) continue;
        await measure(c, row, rep);
      }
    }

    // Medians, ratios, memory.
    const peerRow = (t: number) => [...modelRows.values()].find((r) => r.backend === "llama.cpp" && r.threads === t && r.samples.length > 0);
    for (const row of modelRows.values()) {
      if (row.samples.length > 0) {
        row.status = "ok";
        const pp = row.samples.map((s) => s.pp_tok_s);
        const tg = row.samples.map((s) => s.tg_tok_s);
        row.pp_tok_s = median(pp);
        row.tg_tok_s = median(tg);
        row.pp_spread_pct = spreadPct(pp);
        row.tg_spread_pct = spreadPct(tg);
        row.peak_rss_mb = median(row.samples.map((s) => s.peak_rss_mb));
        row.loadavg_1m = median(row.samples.map((s) => s.loadavg_1m));
        const before = row.samples.map((s) => s.rss_before_load_mb).filter((x): x is number => x !== undefined);
        if (before.length === row.samples.length) {
          row.rss_before_load_mb = median(before);
          row.rss_before_load_source = "measured";
          row.model_adds_mb = median(row.samples.map((s) => s.peak_rss_mb - s.rss_before_load_mb!));
        } else if (row.backend !== "llama.cpp") {
          const key = `${row.backend}:${row.threads}`;
          if (!baselines.has(key)) baselines.set(key, await oursBaseline(row.backend, row.threads, timeoutS));
          const b = baselines.get(key);
          if (b !== undefined) {
            row.rss_before_load_mb = b;
            row.rss_before_load_source = "estimated";
            row.model_adds_mb = row.peak_rss_mb - b;
          }
        }
        if (row.backend !== "llama.cpp") {
          const peer = peerRow(row.backend === "js" ? 1 : row.threads);
          if (peer) {
            row.pp_vs_llama_cpp = row.pp_tok_s / median(peer.samples.map((s) => s.pp_tok_s));
            row.tg_vs_llama_cpp = row.tg_tok_s / median(peer.samples.map((s) => s.tg_tok_s));
          }
          const peer1 = peerRow(1)?.samples[0]?.tokens;
          const ours = row.samples[0]!.tokens;
          if (peer1 && ours) row.tokens_agree_with_llama_cpp = commonPrefix(ours, peer1);
        }
      }
      rows.push(row);
    }
  }

  if (!oursTakesTokens) notes.push("`petrel bench` has no --tokens flag yet: it built its prompt itself with the same formula as scripts/bench/prompt.ts (same ids as the peer)");
  if (rows.some((r) => r.rss_before_load_source === "estimated")) {
    notes.push("'before' for our backends is estimated (scripts/bench/ours-baseline.ts: same imports and backend, no model, separate process) until `petrel bench` reports rss_before_load_mb");
  }
  const result = {
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? " -- " + process.argv.slice(2).join(" ") : ""}`,
    git_commit: gitCommit(),
    host: { node: process.version, cpu: cpus()[0]?.model ?? "?", logical_cpus: cpus().length, loadavg_end: loadavg() },
    llama_cpp: peerInfo ? { ...peerInfo, node_llama_cpp_expected: PEER_VERSION } : { unavailable: peerUnavailable ?? "not selected" },
    settings: { reps, js_reps: jsReps, prompt: nPrompt, gen: nGen, js_prompt: jsPrompt, js_gen: jsGen, threads: threadCounts, backends },
    models: entries,
    rows,
    notes,
  };
  const resultsDir = join(cacheDir, "results");
  mkdirSync(resultsDir, { recursive: true });
  const saved = join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  writeFileSync(saved, JSON.stringify(result, null, 2) + "\n");

  if (flags.bool("json")) process.stdout.write(JSON.stringify(result, null, 2) + "\n");
  else process.stdout.write(formatTable(result, entries, rows, notes, peerInfo));
  log(`saved ${saved}`);
}

/** Swaps neighbours (llama.cpp tN, wasm tN) so the other one goes first. */
function pairwiseSwapped(configs: Config[]): Config[] {
  const out = [...configs];
  for (let i = 0; i + 1 < out.length; i += 2) {
    if (out[i]!.threads === out[i + 1]!.threads && out[i]!.backend !== out[i + 1]!.backend) [out[i], out[i + 1]] = [out[i + 1]!, out[i]!];
  }
  return out;
}

async function oursBaseline(backend: string, threads: number, timeoutS: number): Promise<number | undefined> {
  const args = ["--import", "tsx", "scripts/bench/ours-baseline.ts", "--backend", backend];
  if (backend === "wasm") args.push("--threads", String(threads));
  const r = await runJsonChild<{ rss_mb: number }>(process.execPath, args, { cwd: root, timeoutS });
  return r.ok ? r.value!.rss_mb : undefined;
}

function gitCommit(): string | undefined {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: root, encoding: "utf8" }).trim() !== "";
    return dirty ? `${head}+uncommitted` : head;
  } catch {
    return undefined;
  }
}

function formatTable(result: { started_at: string; git_commit?: string; host: { node: string; cpu: string; logical_cpus: number } }, entries: ModelEntry[], rows: Row[], notes: string[], peer?: PeerInfo): string {
  const f = (x: number | undefined, digits: number) => (x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(digits));
  const lines: string[] = [];
  lines.push(`Petrel bench  ${result.started_at}  commit ${result.git_commit ?? "?"}  node ${result.host.node}`);
  lines.push(`CPU: ${result.host.cpu} (${result.host.logical_cpus} logical CPUs)`);
  if (peer) lines.push(`llama.cpp ${peer.llama_cpp_release} (node-llama-cpp ${peer.node_llama_cpp}) reports: ${peer.system_info.trim()}`);
  lines.push("Medians of the runs; ±: half the min–max range; ×llama: ours / llama.cpp at the same thread count (js: vs 1 thread).");
  lines.push("Memory per process: peak RSS; 'adds' = peak RSS − RSS before loading the model (~: 'before' estimated). load: 1-min load average at run start.");
  lines.push("");
  const head = ["backend", "thr", "prompt/gen", "prompt tok/s", "±%", "decode tok/s", "±%", "pp ×llama", "tg ×llama", "peak MiB", "adds MiB", "runs", "load"];
  const widths = [10, 3, 10, 12, 4, 12, 4, 9, 9, 8, 9, 4, 4];
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  for (const e of entries) {
    lines.push(`${e.name}: ${e.description}; file ${e.facts.file_mb.toFixed(1)} MiB; our F32 KV-cache ${e.kv_cache_mb.toFixed(1)} MiB`);
    lines.push("  " + fmt(head));
    for (const r of rows.filter((r) => r.model === e.name)) {
      if (r.status !== "ok") {
        lines.push("  " + fmt([r.backend, String(r.threads), r.prompt ? `${r.prompt}/${r.gen}` : "—", r.status, "", "", "", "", "", "", "", "0", ""]).trimEnd() + `  ${r.note ?? ""}`);
        continue;
      }
      const adds = r.model_adds_mb === undefined ? "—" : `${r.rss_before_load_source === "estimated" ? "~" : ""}${r.model_adds_mb.toFixed(0)}`;
      lines.push(
        "  " +
          fmt([
            r.backend, String(r.threads), `${r.prompt}/${r.gen}`, f(r.pp_tok_s, 1), f(r.pp_spread_pct, 0), f(r.tg_tok_s, 2), f(r.tg_spread_pct, 0),
            r.pp_vs_llama_cpp === undefined ? "—" : `${r.pp_vs_llama_cpp.toFixed(3)}×`, r.tg_vs_llama_cpp === undefined ? "—" : `${r.tg_vs_llama_cpp.toFixed(3)}×`,
            f(r.peak_rss_mb, 0), adds, String(r.runs), f(r.loadavg_1m, 1),
          ]) +
          (r.note ? `  (${r.note})` : ""),
      );
    }
    // The issue's memory criterion for our backends: adds ≤ file + KV-cache + 24 MB.
    const budget = e.facts.file_mb + e.kv_cache_mb + 24;
    const ours = rows.filter((r) => r.model === e.name && r.backend !== "llama.cpp" && r.model_adds_mb !== undefined);
    if (ours.length > 0) lines.push(`  memory budget (file + KV + 24 MiB) ${budget.toFixed(0)} MiB: ${ours.map((r) => `${r.backend} t${r.threads} ${r.model_adds_mb! <= budget ? "within" : "over"}`).join(", ")}`);
    const w1 = rows.find((r) => r.model === e.name && r.backend === "wasm" && r.threads === 1 && r.status === "ok");
    if (e.floors) {
      const got = (x: number | undefined, floor: number) => (x === undefined ? "not measured" : `${x.toFixed(3)}× (${x >= floor ? "meets" : "below"} ${floor}×)`);
      lines.push(`  issue floors, wasm 1 thread vs llama.cpp 1 thread: prefill ${got(w1?.pp_vs_llama_cpp, e.floors.pp)}, decode ${got(w1?.tg_vs_llama_cpp, e.floors.tg)}`);
    }
    const agree = rows.filter((r) => r.model === e.name && r.tokens_agree_with_llama_cpp !== undefined);
    if (agree.length > 0) lines.push(`  greedy tokens equal to llama.cpp's: ${agree.map((r) => `${r.backend} t${r.threads} first ${r.tokens_agree_with_llama_cpp}`).join(", ")}`);
    lines.push("");
  }
  for (const n of notes) lines.push(`note: ${n}`);
  return lines.join("\n") + "\n";
}

try {
  await main();
} catch (e) {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
