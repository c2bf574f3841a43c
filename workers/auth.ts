/**
 * API keys. A key is never stored: only its SHA-256 digest (hex). Keys come from two places:
 * the `API_KEYS` secret (JSON, changes with a deploy or `wrangler secret put`) and the `KEYS` KV
 * namespace (added and revoked at run time through /v1/admin/keys, no redeploy). A revocation is
 * a KV tombstone, so it works for keys of either kind. The key decides the tenant.
 */
import type { Env } from "./env.ts";
import { unauthorized } from "./errors.ts";

export interface KeyRecord {
  id: string;
  /** SHA-256 hex digest of the key. */
  hash: string;
  tenant: string;
  name?: string;
  rpm?: number;
  tpm?: number;
  created?: number;
}

/** Who is calling: the tenant and the limits of the key they used. */
export interface Principal {
  keyId: string;
  keyHash: string;
  tenant: string;
  rpm: number;
  tpm: number;
}

const TENANT_RE = /^[A-Za-z0-9._:-]{1,64}$/;
const HEX64_RE = /^[0-9a-f]{64}$/;

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Compares two equal-length strings in time that depends only on their length (which is public:
 * both are 64-hex digests), never on where they differ.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

let parsedFor: string | undefined;
let parsedKeys: KeyRecord[] = [];

/** The keys of the API_KEYS secret; a malformed entry is skipped (and logged), never trusted. */
export function configuredKeys(env: Env): KeyRecord[] {
  const raw = env.API_KEYS ?? "[]";
  if (raw === parsedFor) return parsedKeys;
  let list: unknown;
  try {
    list = JSON.parse(raw);
  } catch {
    console.error(JSON.stringify({ level: "error", msg: "API_KEYS is not valid JSON; no configured keys" }));
    list = [];
  }
  parsedKeys = (Array.isArray(list) ? list : []).filter((k): k is KeyRecord => {
    const ok = isKeyRecord(k);
    if (!ok) console.error(JSON.stringify({ level: "error", msg: "API_KEYS entry skipped", entry: String((k as { id?: unknown })?.id ?? "?") }));
    return ok;
  });
  parsedFor = raw;
  return parsedKeys;
}

export function isKeyRecord(k: unknown): k is KeyRecord {
  if (typeof k !== "object" || k === null) return false;
  const r = k as Record<string, unknown>;
  const optionalLimit = (v: unknown) => v === undefined || (typeof v === "number" && Number.isInteger(v) && v > 0);
  return typeof r.id === "string" && typeof r.hash === "string" && HEX64_RE.test(r.hash) && typeof r.tenant === "string" &&
    TENANT_RE.test(r.tenant) && optionalLimit(r.rpm) && optionalLimit(r.tpm);
}

export function isValidTenant(t: string): boolean {
  return TENANT_RE.test(t);
}

function bearer(header: string | undefined): string | undefined {
  const m = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return m?.[1];
}

/** The principal behind an Authorization header, or a 401 ApiError. */
export async function authenticate(env: Env, header: string | undefined, defaults: { rpm: number; tpm: number }): Promise<Principal> {
  const key = bearer(header);
  if (!key) throw unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'.");
  const hash = await sha256Hex(key);

  // Every configured digest is compared, without an early exit.
  let found: KeyRecord | undefined;
  for (const record of configuredKeys(env)) {
    if (constantTimeEqual(record.hash, hash) && !found) found = record;
  }
  if (found) {
    if ((await env.KEYS.get(`revoked:${hash}`)) !== null) found = undefined;
  } else {
    const stored = await env.KEYS.get<KeyRecord>(`apikey:${hash}`, "json");
    if (stored && isKeyRecord(stored) && constantTimeEqual(stored.hash, hash)) found = stored;
  }
  if (!found) throw unauthorized(`Incorrect API key provided: ${redact(key)}.`);
  return { keyId: found.id, keyHash: hash, tenant: found.tenant, rpm: found.rpm ?? defaults.rpm, tpm: found.tpm ?? defaults.tpm };
}

/** Whether the header carries one of the ADMIN_KEY_HASHES keys. */
export async function isAdmin(env: Env, header: string | undefined): Promise<boolean> {
  const key = bearer(header);
  if (!key) return false;
  const hash = await sha256Hex(key);
  let ok = false;
  for (const h of (env.ADMIN_KEY_HASHES ?? "").split(",").map((s) => s.trim().toLowerCase())) {
    if (HEX64_RE.test(h) && constantTimeEqual(h, hash)) ok = true;
  }
  return ok;
}

/** A new random key: `sk-petrel-` and 32 random bytes in base64url. */
export function newApiKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return `sk-petrel-${btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "")}`;
}

/** How OpenAI shows a wrong key: its first and last characters only. */
function redact(key: string): string {
  return key.length <= 10 ? "****" : `${key.slice(0, 6)}****${key.slice(-4)}`;
}
