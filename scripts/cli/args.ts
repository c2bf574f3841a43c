/** Minimal flag parsing shared by the CLI subcommands: `--name value`, `--flag`, `--name=value`. */

/** An error caused by the user's input: printed without a stack trace. */
export class CliError extends Error {
  override name = "CliError";
}

export interface ParsedArgs {
  flags: Map<string, string | true>;
  positional: string[];
}

/** Parses argv; `booleans` lists the flags that take no value. */
export function parseArgs(argv: string[], booleans: readonly string[] = []): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    if (eq >= 0) flags.set(name, arg.slice(eq + 1));
    else if (booleans.includes(name)) flags.set(name, true);
    else if (argv[i + 1] === undefined) flags.set(name, true); // reported as "needs a value" (or "unknown option") when read
    else flags.set(name, argv[++i]!);
  }
  return { flags, positional };
}

/** Typed accessors over parsed flags that name the flag in every error. */
export class Flags {
  constructor(
    private readonly parsed: ParsedArgs,
    allowed: readonly string[],
  ) {
    for (const name of parsed.flags.keys()) {
      if (!allowed.includes(name)) throw new CliError(`unknown option --${name}`);
    }
  }

  get positional(): string[] {
    return this.parsed.positional;
  }

  has(name: string): boolean {
    return this.parsed.flags.has(name);
  }

  string(name: string): string | undefined {
    const v = this.parsed.flags.get(name);
    if (v === true) throw new CliError(`--${name} needs a value`);
    return v;
  }

  requireString(name: string): string {
    const v = this.string(name);
    if (v === undefined) throw new CliError(`--${name} is required`);
    return v;
  }

  number(name: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    const v = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(v)) throw new CliError(`--${name} must be a number, got '${raw}'`);
    if (opts.integer && !Number.isInteger(v)) throw new CliError(`--${name} must be an integer, got '${raw}'`);
    if (opts.min !== undefined && v < opts.min) throw new CliError(`--${name} must be ≥ ${opts.min}, got ${v}`);
    if (opts.max !== undefined && v > opts.max) throw new CliError(`--${name} must be ≤ ${opts.max}, got ${v}`);
    return v;
  }

  /** A comma-separated list of non-negative integers (token ids). */
  ids(name: string): number[] | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    if (raw.trim() === "") return [];
    return raw.split(",").map((s) => {
      const v = Number(s.trim());
      if (!Number.isInteger(v) || v < 0) throw new CliError(`--${name}: '${s}' is not a token id`);
      return v;
    });
  }

  bool(name: string): boolean {
    return this.parsed.flags.get(name) === true;
  }
}
