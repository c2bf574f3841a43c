/** Entry point of the `petrel` CLI: dispatches to one module per subcommand in scripts/cli/. */
import { CliError } from "./cli/args.ts";

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<void> }> }> = {
  inspect: { summary: "print a GGUF file's metadata and tensors", load: () => import("./cli/inspect.ts") },
  tokenize: { summary: "tokenize text with a GGUF vocabulary", load: () => import("./cli/tokenize.ts") },
  generate: { summary: "generate tokens from a GGUF model", load: () => import("./cli/generate.ts") },
  synth: { summary: "write a synthetic model with deterministic weights", load: () => import("./cli/synth.ts") },
  "convert-llama2c": { summary: "convert a llama2.c checkpoint to GGUF", load: () => import("./cli/convert-llama2c.ts") },
  bench: { summary: "measure prompt and decode tokens/s of one model", load: () => import("./cli/bench.ts") },
  shard: { summary: "cut a model into layer ranges that fit a memory budget (a shard plan)", load: () => import("./cli/shard.ts") },
  upload: { summary: "put a GGUF model into the R2 bucket with a manifest entry", load: () => import("./cli/upload.ts") },
  pull: { summary: "download a model (URL or hf:OWNER/REPO/FILE.gguf) and upload it", load: () => import("./cli/pull.ts") },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(16)} ${c.summary}`);
  return `usage: petrel <command> [options]\n\ncommands:\n${lines.join("\n")}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`petrel: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  try {
    await (await command.load()).run(rest);
    return 0;
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`petrel ${name}: ${message}\n`);
    if (!(e instanceof CliError) && process.env.PETREL_DEBUG) console.error(e);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
