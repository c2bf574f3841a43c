/**
 * The sampler's random numbers: xoshiro128** (Blackman & Vigna, 2018), a 32-bit generator with
 * 128 bits of state and period 2^128 − 1, seeded the way its authors recommend — with SplitMix64
 * of the seed. Everything is integer arithmetic (Math.imul, shifts), so a seed gives the same
 * stream on every JS engine and platform.
 */

const MASK64 = (1n << 64n) - 1n;

/** One SplitMix64 step: advances `state` by the golden-ratio increment and mixes it. */
function splitMix64(state: bigint): { state: bigint; output: bigint } {
  const next = (state + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return { state: next, output: z ^ (z >> 31n) };
}

const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));

export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** `seed`: any safe integer; negative seeds use their 64-bit two's complement. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    const a = splitMix64(BigInt.asUintN(64, BigInt(seed)));
    const b = splitMix64(a.state);
    // SplitMix64 never yields two zero outputs in a row, so the state is never all zero.
    this.s0 = Number(a.output & 0xffffffffn) | 0;
    this.s1 = Number(a.output >> 32n) | 0;
    this.s2 = Number(b.output & 0xffffffffn) | 0;
    this.s3 = Number(b.output >> 32n) | 0;
  }

  /** The next 32-bit output, as an unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits (two outputs). */
  nextDouble(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / 9007199254740992;
  }
}

/** A fresh seed from the platform's cryptographic source (Node and Workers both have one). */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}
