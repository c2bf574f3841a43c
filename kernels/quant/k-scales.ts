/**
 * The 12-byte packed sub-block scales of the K-quants: 8 (scale, min) pairs of 6 bits for
 * Q4_K/Q5_K, 16 signed 6-bit scales for Q3_K. Shared by the quantizers and dequantizers.
 */

/** Q4_K/Q5_K: scale of sub-block j (0..7), scales starting at `at`. */
export function scaleK4(bytes: Uint8Array, at: number, j: number): number {
  return j < 4 ? bytes[at + j]! & 63 : (bytes[at + j + 4]! & 0xf) | ((bytes[at + j - 4]! >> 6) << 4);
}

/** Q4_K/Q5_K: min of sub-block j (0..7). */
export function minK4(bytes: Uint8Array, at: number, j: number): number {
  return j < 4 ? bytes[at + j + 4]! & 63 : (bytes[at + j + 4]! >> 4) | ((bytes[at + j]! >> 6) << 4);
}

/** Packs 8 scales and 8 mins (each 0..63) into 12 bytes at `at`, as ggml lays them out. */
export function packScalesK4(bytes: Uint8Array, at: number, scales: Uint8Array, mins: Uint8Array): void {
  for (let j = 0; j < 8; j++) {
    const ls = scales[j]!;
    const lm = mins[j]!;
    if (j < 4) {
      bytes[at + j] = ls;
      bytes[at + j + 4] = lm;
    } else {
      bytes[at + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      bytes[at + j - 4]! |= (ls >> 4) << 6;
      bytes[at + j]! |= (lm >> 4) << 6;
    }
  }
}

/** Q3_K: signed scale of sub-block j (0..15): low 4 bits in nibbles, high 2 bits in bytes 8..11. */
export function scaleK3(bytes: Uint8Array, at: number, j: number): number {
  const low = j < 8 ? bytes[at + j]! & 0xf : bytes[at + j - 8]! >> 4;
  const high = (bytes[at + 8 + (j & 3)]! >> (2 * (j >> 2))) & 3;
  return (low | (high << 4)) - 32;
}

/** Q3_K: packs 16 biased scales (each 0..63, i.e. scale + 32) into 12 zeroed bytes at `at`. */
export function packScalesK3(bytes: Uint8Array, at: number, biased: Uint8Array): void {
  for (let j = 0; j < 16; j++) {
    const l = biased[j]!;
    if (j < 8) bytes[at + j] = l & 0xf;
    else bytes[at + j - 8]! |= (l & 0xf) << 4;
    bytes[at + 8 + (j & 3)]! |= (l >> 4) << (2 * (j >> 2));
  }
}
