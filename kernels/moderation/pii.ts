/**
 * PII and secret detectors: e-mail addresses, phone numbers, payment card numbers (Luhn +
 * issuer prefix), IBANs (country length + ISO 13616 mod-97), and API-key-like secrets (known
 * key formats plus high-entropy tokens). Each returns spans in the input string's UTF-16
 * offsets; `detectPii` resolves overlaps (secret > card > iban > email > phone).
 */

export const PII_KINDS = ["email", "phone", "card", "iban", "secret"] as const;
export type PiiKind = (typeof PII_KINDS)[number];

export interface PiiMatch {
  kind: PiiKind;
  start: number;
  end: number;
  /** e.g. "visa", "DE", "openai-key", "high-entropy" */
  detail?: string;
}

/**
 * Run `re` (global) over `text`; a candidate that fails `accept` is shortened group by group
 * (dropping a trailing separator and group) until it passes, and if none passes, scanning
 * resumes one character later — so a card number right after a phone number, or a phone
 * number inside a longer digit sequence, is still found. `minDigits` skips candidates that
 * are already too short (shortening only removes digits), keeping adversarial inputs linear.
 */
function scan(
  text: string,
  re: RegExp,
  kind: PiiKind,
  minDigits: number,
  accept: (raw: string) => string | null | undefined,
  startOk: (candidate: string) => boolean = () => true,
): PiiMatch[] {
  const out: PiiMatch[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const start = m.index;
    const whole = m[0];
    if (!startOk(whole)) {
      re.lastIndex = start + 1;
      continue;
    }
    // candidate ends: the whole match, then before each separator run, longest first
    const ends = [whole.length];
    for (let i = whole.length - 1; i > 0; i--) {
      const c = whole[i]!;
      if ((c === " " || c === "." || c === "-") && !/[ .-]/.test(whole[i - 1]!)) ends.push(i);
    }
    let found: { end: number; detail: string } | undefined;
    for (const end of ends) {
      const raw = whole.slice(0, end);
      if (countDigits(raw) < minDigits) break;
      const detail = accept(raw);
      if (detail !== null && detail !== undefined) {
        found = { end, detail };
        break;
      }
    }
    if (found) {
      out.push({ kind, start, end: start + found.end, ...(found.detail ? { detail: found.detail } : {}) });
      re.lastIndex = start + found.end;
    } else re.lastIndex = start + 1;
  }
  return out;
}

function countDigits(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

// ------------------------------------------------------------------ Luhn and payment cards

/** The Luhn (mod 10) check over a string of digits. */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits) || digits.length < 2) return false;
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** The card network for an issuer prefix (IIN) and length, or undefined if none fits. */
export function cardBrand(digits: string): string | undefined {
  const n = digits.length;
  const p2 = Number(digits.slice(0, 2));
  const p3 = Number(digits.slice(0, 3));
  const p4 = Number(digits.slice(0, 4));
  const p6 = Number(digits.slice(0, 6));
  if (digits[0] === "4" && (n === 13 || n === 16 || n === 19)) return "visa";
  if (((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720)) && n === 16) return "mastercard";
  if ((p2 === 34 || p2 === 37) && n === 15) return "amex";
  if ((p4 === 6011 || p2 === 65 || (p3 >= 644 && p3 <= 649) || (p6 >= 622126 && p6 <= 622925)) && n >= 16 && n <= 19) return "discover";
  if (p4 >= 3528 && p4 <= 3589 && n >= 16 && n <= 19) return "jcb";
  if (((p3 >= 300 && p3 <= 305) || p2 === 36 || p2 === 38 || p2 === 39) && n >= 14 && n <= 19) return "diners";
  if (p2 === 62 && n >= 16 && n <= 19) return "unionpay";
  if ((p2 === 50 || (p2 >= 56 && p2 <= 69)) && n >= 12 && n <= 19) return "maestro";
  return undefined;
}

/** 13–19 digits, optionally grouped by single spaces or dashes, Luhn-valid, with a known issuer prefix. */
export function findCards(text: string): PiiMatch[] {
  return scan(
    text,
    /(?<![\d\w])\d(?:[ -]?\d){12,18}(?![\d\w])/g,
    "card",
    13,
    (raw) => {
      let digits = "";
      let sep = "";
      for (const ch of raw) {
        if (ch >= "0" && ch <= "9") digits += ch;
        else if (sep && ch !== sep) return null; // mixed separators: not a card number as written
        else sep = ch;
      }
      if (digits.length < 13 || digits.length > 19) return null;
      const brand = cardBrand(digits);
      return brand && luhnValid(digits) ? brand : null;
    },
    (candidate) => candidate[0]! >= "2" && candidate[0]! <= "6", // no issuer prefix starts with 0, 1, 7, 8 or 9
  );
}

// ------------------------------------------------------------------ IBAN

/** IBAN lengths by country (ISO 13616 registry). */
export const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, BY: 28, CH: 21,
  CR: 22, CY: 28, CZ: 24, DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27,
  GB: 22, GE: 22, GI: 23, GL: 18, GR: 27, GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IQ: 23, IS: 26,
  IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MD: 24,
  ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29, PT: 25, QA: 29,
  RO: 24, RS: 22, SA: 24, SC: 31, SE: 24, SI: 19, SK: 24, SM: 27, ST: 25, SV: 28, TL: 23, TN: 24,
  TR: 26, UA: 29, VA: 22, VG: 24, XK: 20,
};

/** ISO 7064 mod 97-10 as used by IBAN: rearranged, letters → 10..35, remainder must be 1. */
export function ibanValid(input: string): boolean {
  const iban = input.replace(/[ ]/g, "").toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  const expected = IBAN_LENGTHS[iban.slice(0, 2)];
  if (expected !== undefined ? iban.length !== expected : iban.length < 15 || iban.length > 34) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let rem = 0;
  for (const ch of rearranged) {
    const code = ch.charCodeAt(0);
    const value = code >= 65 ? code - 55 : code - 48;
    rem = value >= 10 ? (rem * 100 + value) % 97 : (rem * 10 + value) % 97;
  }
  return rem === 1;
}

export function findIbans(text: string): PiiMatch[] {
  // compact, or printed in groups of four separated by single spaces
  const re = /(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?:[A-Za-z0-9]{11,30}|(?: [A-Za-z0-9]{4}){2,7}(?: [A-Za-z0-9]{1,4})?)(?![A-Za-z0-9])/g;
  return scan(text, re, "iban", 2, (raw) => (raw.replace(/ /g, "").length >= 15 && ibanValid(raw) ? raw.slice(0, 2).toUpperCase() : null));
}

// ------------------------------------------------------------------ e-mail and phone

export function findEmails(text: string): PiiMatch[] {
  const out: PiiMatch[] = [];
  const re = /(?<![A-Za-z0-9._%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])/g;
  for (const m of text.matchAll(re)) out.push({ kind: "email", start: m.index!, end: m.index! + m[0].length });
  return out;
}

/**
 * Phone numbers: "+" and 8–15 digits, or national formats with a separator structure
 * ("(555) 123-4567", "555-123-4567", "020 7946 0958") and 9–12 digits. Dates (2024-01-31),
 * times and plain digit runs without separators are not phone numbers here.
 */
export function findPhones(text: string): PiiMatch[] {
  const re = /(?<![\w+.\/-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,6}(?:[ .-]\d{1,6}){1,5}(?![\w\/]|[.-]\d)|(?<![\w+])\+\d{8,15}(?!\w)/g;
  return scan(text, re, "phone", 8, (raw) => {
    const digits = raw.replace(/\D/g, "");
    const international = raw.startsWith("+");
    if (international ? digits.length < 8 || digits.length > 15 : digits.length < 9 || digits.length > 12) return null;
    if (/^\d{4}[-./]\d{1,2}[-./]\d{1,2}$/.test(raw) || /^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$/.test(raw)) return null; // dates
    if (!international && !raw.includes("(")) {
      // national numbers: groups of 2–6 digits (a leading "1" trunk prefix allowed), at most four groups
      const groups = raw.split(/[ .-]/);
      if (groups.some((g) => g.length < 2) && !(groups[0] === "1" && groups.length >= 3)) return null;
      if (groups.length > 4) return null;
    }
    return international ? "international" : "national";
  });
}

// ------------------------------------------------------------------ secrets

const SECRET_PATTERNS: { detail: string; re: RegExp }[] = [
  { detail: "private-key", re: /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]{0,8192}?-----END (?:[A-Z]+ )?PRIVATE KEY-----/g },
  { detail: "openai-key", re: /(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,256}(?![A-Za-z0-9_-])/g },
  { detail: "aws-access-key-id", re: /(?<![A-Za-z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}(?![A-Za-z0-9])/g },
  { detail: "github-token", re: /(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])/g },
  { detail: "slack-token", re: /(?<![A-Za-z0-9-])xox[abposr]-[A-Za-z0-9-]{10,200}(?![A-Za-z0-9-])/g },
  { detail: "stripe-key", re: /(?<![A-Za-z0-9_])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,200}(?![A-Za-z0-9_])/g },
  { detail: "google-api-key", re: /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/g },
  { detail: "jwt", re: /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?![A-Za-z0-9_-])/g },
];

/** Shannon entropy in bits per character. */
export function shannonEntropy(s: string): number {
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  const n = s.length;
  for (const c of counts.values()) {
    const p = c / n;
    h -= p * Math.log2(p);
  }
  return h;
}

/**
 * A token that looks like a random secret: 24+ characters from [A-Za-z0-9+/_=-], letters and
 * digits mixed, not a pure hex string (hashes, UUID parts), entropy ≥ 4 bits/char (3.7 for
 * 24–31 characters, where a random sample cannot reach 4 as easily).
 */
export function looksLikeSecret(token: string): boolean {
  if (token.length < 24) return false;
  if (!/[0-9]/.test(token) || !/[A-Za-z]/.test(token)) return false;
  if (/^[0-9a-fA-F-]+$/.test(token)) return false;
  if (!/[A-Z]/.test(token) || !/[a-z]/.test(token)) return false;
  const min = token.length < 32 ? 3.7 : 4;
  return shannonEntropy(token) >= min;
}

export function findSecrets(text: string): PiiMatch[] {
  let known: PiiMatch[] = [];
  for (const { detail, re } of SECRET_PATTERNS) {
    // earlier patterns win where two key formats overlap
    const add: PiiMatch[] = [];
    for (const m of text.matchAll(re)) if (!overlapsSorted(known, m.index!, m.index! + m[0].length)) add.push({ kind: "secret", start: m.index!, end: m.index! + m[0].length, detail });
    known = [...known, ...add].sort((a, b) => a.start - b.start);
  }
  const entropic: PiiMatch[] = [];
  for (const m of text.matchAll(/(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{24,512}={0,2}(?![A-Za-z0-9+/_=-])/g)) {
    const token = m[0].replace(/=+$/, "");
    if (!looksLikeSecret(token)) continue;
    const start = m.index!;
    const end = start + m[0].length;
    if (overlapsSorted(known, start, end)) continue;
    entropic.push({ kind: "secret", start, end, detail: "high-entropy" });
  }
  return [...known, ...entropic].sort((a, b) => a.start - b.start);
}

// ------------------------------------------------------------------ all together

const PRIORITY: Record<PiiKind, number> = { secret: 0, card: 1, iban: 2, email: 3, phone: 4 };

/** Whether [start, end) overlaps an interval of `sorted` (sorted by start, pairwise disjoint). */
function overlapsSorted(sorted: readonly PiiMatch[], start: number, end: number): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]!.end <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo]!.start < end;
}

/** Non-overlapping matches of the requested kinds, in text order; on overlap the higher-priority kind wins. */
export function detectPii(text: string, kinds: readonly PiiKind[] = PII_KINDS): PiiMatch[] {
  const want = new Set(kinds);
  const byPriority: PiiMatch[][] = [];
  if (want.has("secret")) byPriority.push(findSecrets(text));
  if (want.has("card")) byPriority.push(findCards(text));
  if (want.has("iban")) byPriority.push(findIbans(text));
  if (want.has("email")) byPriority.push(findEmails(text));
  if (want.has("phone")) byPriority.push(findPhones(text));
  let kept: PiiMatch[] = [];
  for (const group of byPriority) {
    const add = group.filter((m) => !overlapsSorted(kept, m.start, m.end));
    kept = [...kept, ...add].sort((a, b) => a.start - b.start);
  }
  return kept;
}
