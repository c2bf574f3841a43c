/**
 * The llama.cpp peer (node-llama-cpp), installed on demand into its own folder (.cache/peer/ by
 * default) with the lean command from TOOLCHAIN.md, so the project never depends on it.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export const PEER_VERSION = "3.22.1";
const PEER_PACKAGES = [`node-llama-cpp@${PEER_VERSION}`, `@node-llama-cpp/linux-x64@${PEER_VERSION}`];

export function installedPeerVersion(peerDir: string): string | undefined {
  const pkg = join(peerDir, "node_modules/node-llama-cpp/package.json");
  if (!existsSync(pkg)) return undefined;
  return (JSON.parse(readFileSync(pkg, "utf8")) as { version?: string }).version;
}

/**
 * Makes sure node-llama-cpp PEER_VERSION is in peerDir; installs it when `install` allows.
 * Returns undefined when ready, or why the peer is unavailable.
 */
export async function ensurePeer(peerDir: string, opts: { install: boolean; log: (s: string) => void }): Promise<string | undefined> {
  if (installedPeerVersion(peerDir) === PEER_VERSION) return undefined;
  if (process.platform !== "linux" || process.arch !== "x64") return `no lean install recipe for ${process.platform}-${process.arch}`;
  if (!opts.install) return `node-llama-cpp ${PEER_VERSION} is not installed in ${peerDir} (run without --no-install)`;
  mkdirSync(peerDir, { recursive: true });
  const pkgJson = join(peerDir, "package.json");
  if (!existsSync(pkgJson)) writeFileSync(pkgJson, JSON.stringify({ name: "petrel-bench-peer", private: true, type: "module" }, null, 2) + "\n");
  opts.log(`installing node-llama-cpp ${PEER_VERSION} into ${peerDir} (≈85 MB) …`);
  try {
    await execFileAsync("npm", ["install", "--no-audit", "--no-fund", "--os=linux", "--cpu=x64", "--omit=optional", ...PEER_PACKAGES], { cwd: peerDir, maxBuffer: 8 << 20 });
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim().split("\n").slice(-3).join(" | ");
    return `npm install of node-llama-cpp failed: ${stderr || (e as Error).message}`;
  }
  return installedPeerVersion(peerDir) === PEER_VERSION ? undefined : "node-llama-cpp install finished but the package is missing";
}
