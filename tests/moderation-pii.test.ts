/** PII detectors and redaction: e-mail, phone, cards (Luhn + issuer), IBAN (mod 97), secrets. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cardBrand, detectPii, findCards, findEmails, findIbans, findPhones, findSecrets, ibanValid, looksLikeSecret, luhnValid } from "../kernels/moderation/pii.ts";
import { parsePolicy } from "../kernels/moderation/policy.ts";
import { findRuleHits, redactText } from "../kernels/moderation/rules.ts";

const spans = (text: string, ms: { start: number; end: number }[]) => ms.map((m) => text.slice(m.start, m.end));

/** Append the Luhn check digit to a digit string. */
function withLuhn(body: string): string {
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return body + d;
  throw new Error("unreachable");
}

describe("Luhn", () => {
  it("accepts known-valid numbers and rejects single-digit changes", () => {
    for (const n of ["79927398713", "4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "3530111333300000", "30569309025904", "4012888888881881", "0"]) {
      if (n === "0") expect(luhnValid(n)).toBe(false); // fewer than 2 digits
      else expect(luhnValid(n), n).toBe(true);
    }
    expect(luhnValid("79927398710")).toBe(false);
    expect(luhnValid("4111111111111112")).toBe(false);
    expect(luhnValid("4111 1111 1111 1111")).toBe(false); // digits only
    expect(luhnValid("")).toBe(false);
  });

  it("every single-digit substitution of a valid number breaks it (property)", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{12,18}$/), fc.nat(), fc.integer({ min: 1, max: 9 }), (body, pos, delta) => {
        const n = withLuhn(body);
        const i = pos % n.length;
        const changed = n.slice(0, i) + ((Number(n[i]) + delta) % 10) + n.slice(i + 1);
        expect(luhnValid(n)).toBe(true);
        expect(luhnValid(changed)).toBe(false);
      }),
    );
  });

  it("detects an adjacent transposition except 09↔90 (a known Luhn blind spot)", () => {
    expect(luhnValid("4111111111111111")).toBe(true);
    expect(luhnValid("1411111111111111")).toBe(false);
    // 0 and 9 swapped keeps the checksum: both pass
    expect(luhnValid(withLuhn("40900000000000"))).toBe(true);
    const n = withLuhn("40900000000000");
    expect(luhnValid(n.replace("409", "490"))).toBe(true);
  });
});

describe("payment cards", () => {
  it("finds cards written plain, with spaces or dashes, and names the brand", () => {
    const t = "visa 4111 1111 1111 1111, mc 5555-5555-5555-4444, amex 378282246310005, disc 6011111111111117.";
    expect(findCards(t).map((m) => [t.slice(m.start, m.end), m.detail])).toEqual([
      ["4111 1111 1111 1111", "visa"],
      ["5555-5555-5555-4444", "mastercard"],
      ["378282246310005", "amex"],
      ["6011111111111117", "discover"],
    ]);
  });

  it("rejects Luhn failures, wrong lengths, unknown issuers, mixed separators and digits inside longer runs", () => {
    expect(findCards("4111 1111 1111 1112")).toEqual([]); // Luhn
    expect(findCards(withLuhn("41111111111"))).toEqual([]); // 12 digits
    expect(findCards(withLuhn("4111111111111111111"))).toEqual([]); // 20 digits
    expect(findCards(withLuhn("999999999999999"))).toEqual([]); // no issuer starts with 9
    expect(findCards("0000000000000000")).toEqual([]); // Luhn-valid zeros, no issuer
    expect(findCards("4111 1111-1111 1111")).toEqual([]); // mixed separators
    expect(findCards("order 94111111111111111 shipped")).toEqual([]); // embedded in a longer number
    expect(findCards("id4111111111111111")).toEqual([]); // glued to a word
    expect(cardBrand("4111111111111111")).toBe("visa");
    expect(cardBrand("2221000000000009")).toBe("mastercard");
  });
});

describe("IBAN", () => {
  const valid = [
    "DE89370400440532013000",
    "GB82WEST12345698765432",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "BE68539007547034",
    "CH9300762011623852957",
    "ES9121000418450200051332",
    "IT60X0542811101000000123456",
    "NO9386011117947",
    "AT611904300234573201",
  ];

  it("validates the mod-97 check and the country's length", () => {
    for (const iban of valid) expect(ibanValid(iban), iban).toBe(true);
    expect(ibanValid("de89370400440532013000")).toBe(true); // lower case
    expect(ibanValid("DE89 3704 0044 0532 0130 00")).toBe(true); // printed form
    expect(ibanValid("DE88370400440532013000")).toBe(false); // check digits
    expect(ibanValid("DE89370400440532013001")).toBe(false); // one digit changed
    expect(ibanValid("DE8937040044053201300")).toBe(false); // 21 characters for DE (22)
    expect(ibanValid("GB82WEST1234569876543")).toBe(false);
    expect(ibanValid("XX89370400440532013000")).toBe(false); // unknown country, mod 97 fails
    expect(ibanValid("DE89-3704-0044-0532-0130-00")).toBe(false);
  });

  it("any single character change breaks a valid IBAN (property)", () => {
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 1, max: 9 }), (iban, pos, delta) => {
        const i = 4 + (pos % (iban.length - 4)); // in the BBAN
        const ch = iban[i]!;
        const changed = /\d/.test(ch) ? String((Number(ch) + delta) % 10) : String.fromCharCode(65 + ((ch.charCodeAt(0) - 65 + delta) % 26));
        expect(ibanValid(iban.slice(0, i) + changed + iban.slice(i + 1))).toBe(false);
      }),
    );
  });

  it("finds IBANs in text, compact or grouped by four", () => {
    const t = "Pay to DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432; not GB82WEST12345698765433.";
    expect(spans(t, findIbans(t))).toEqual(["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"]);
  });
});

describe("e-mail and phone numbers", () => {
  it("finds e-mail addresses", () => {
    const t = "write to john.doe+news@example.co.uk, <a@b.io> or ops@sub.domain.org. Not: foo@bar, @handle, x@y.z";
    expect(spans(t, findEmails(t))).toEqual(["john.doe+news@example.co.uk", "a@b.io", "ops@sub.domain.org"]);
  });

  it("finds phone numbers in international and national formats, not dates, versions or small numbers", () => {
    const t = "Call +1 415 555 2671, (555) 123-4567, 555.123.4567, +44 20 7946 0958, 07700 900123 or +4915112345678.";
    expect(spans(t, findPhones(t))).toEqual(["+1 415 555 2671", "(555) 123-4567", "555.123.4567", "+44 20 7946 0958", "07700 900123", "+4915112345678"]);
    const notPhones = "On 2024-01-31 at 10:30 we shipped v1.2.3 to 192.168.1.1; order 12345; pi 3.14159265; 1 2 3 4 5 6 7 8 9 10.";
    expect(findPhones(notPhones)).toEqual([]);
  });
});

describe("secrets", () => {
  it("finds known key formats", () => {
    const keys = [
      "sk-proj-" + "Ab3dEf6hIj9kLmN0pQrStUvWxYz12345",
      "sk-" + "abcdefghijklmnopqrstuvwxyz0123456789ABCD",
      "AKIAIOSFODNN7EXAMPLE",
      "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
      "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
      "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKl",
      "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
      "AIza" + "SyA-1234567890abcdefghijklmnopqrstu",
    ];
    for (const k of keys) {
      const t = `my key is ${k} thanks`;
      expect(spans(t, findSecrets(t)), k).toEqual([k]);
    }
    const pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
    expect(spans(pem, findSecrets(pem))).toEqual([pem]);
  });

  it("flags high-entropy tokens but not hashes, UUIDs, words or repetitive strings", () => {
    expect(looksLikeSecret("Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg")).toBe(true);
    expect(looksLikeSecret("q8Vt2LmZ0xR7nB4kW9pE1sYc")).toBe(true);
    expect(looksLikeSecret("3f786850e387550fdab836ed7e6dc881de23001b")).toBe(false); // git SHA (hex)
    expect(looksLikeSecret("123e4567-e89b-12d3-a456-426614174000")).toBe(false); // UUID
    expect(looksLikeSecret("internationalization_and_localization")).toBe(false); // no digits
    expect(looksLikeSecret("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1A")).toBe(false); // low entropy
    expect(looksLikeSecret("Short1Token")).toBe(false);
    const t = "token=q8Vt2LmZ0xR7nB4kW9pE1sYc and commit 3f786850e387550fdab836ed7e6dc881de23001b";
    expect(spans(t, findSecrets(t))).toEqual(["q8Vt2LmZ0xR7nB4kW9pE1sYc"]);
  });
});

describe("detectPii and redaction", () => {
  it("resolves overlaps by priority and redacts with typed placeholders", () => {
    const text = "Mail ann@example.com, card 4111-1111-1111-1111, IBAN GB82WEST12345698765432, key AKIAIOSFODNN7EXAMPLE, phone +1 415 555 2671.";
    expect(detectPii(text).map((m) => m.kind)).toEqual(["email", "card", "iban", "secret", "phone"]);
    const policy = parsePolicy({ pii: { email: "redact", phone: "redact", card: "redact", iban: "redact", secret: "redact" } });
    expect(redactText(text, findRuleHits(text, policy))).toBe(
      "Mail [REDACTED_EMAIL], card [REDACTED_CARD], IBAN [REDACTED_IBAN], key [REDACTED_SECRET], phone [REDACTED_PHONE].",
    );
  });

  it("allow leaves PII alone; the default policy redacts cards, IBANs and secrets only", () => {
    const text = "ann@example.com 4111 1111 1111 1111";
    expect(redactText(text, findRuleHits(text, parsePolicy({})))).toBe("ann@example.com [REDACTED_CARD]");
    const none = parsePolicy({ pii: { email: "allow", phone: "allow", card: "allow", iban: "allow", secret: "allow" } });
    expect(findRuleHits(text, none)).toEqual([]);
  });

  it("redaction never leaves a detected value in the output (property)", () => {
    const policy = parsePolicy({ pii: { email: "redact", phone: "redact", card: "redact", iban: "redact", secret: "redact" } });
    const pieces = fc.constantFrom("hello", "world", "ann@example.com", "4111 1111 1111 1111", "GB82WEST12345698765432", "AKIAIOSFODNN7EXAMPLE", "+44 20 7946 0958", "the", "and", ",", ".");
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 20 }), (parts) => {
        const text = parts.join(" ");
        const out = redactText(text, findRuleHits(text, policy));
        for (const secret of ["ann@example.com", "4111 1111 1111 1111", "GB82WEST12345698765432", "AKIAIOSFODNN7EXAMPLE", "+44 20 7946 0958"]) {
          expect(out.includes(secret)).toBe(false);
        }
        expect(detectPii(out)).toEqual([]);
      }),
    );
  });
});

describe("adversarial input sizes", () => {
  it("detectors, rules and the featurizer stay fast on 200 KB of pathological text", async () => {
    const { scoringSpans, featurizeSparse } = await import("../kernels/moderation/features.ts");
    const policy = parsePolicy({ pii: { email: "redact", phone: "redact" }, rules: { blocklists: [{ id: "b", terms: ["aaaa", "1 1 1"] }] } });
    const cases = ["a".repeat(200_000), "1".repeat(200_000), "1 ".repeat(100_000), "12-".repeat(66_000), "4111 ".repeat(40_000), "a@".repeat(100_000), "a.".repeat(100_000), "DE89 3704 ".repeat(20_000), "k1ll ".repeat(40_000), "+1 ".repeat(66_000)];
    for (const text of cases) {
      const t0 = performance.now();
      findRuleHits(text, policy);
      scoringSpans(text, 320);
      featurizeSparse(text);
      expect(performance.now() - t0, JSON.stringify(text.slice(0, 12))).toBeLessThan(5000);
    }
  });
});
