// Layouts of the quantized activations the dot-product kernels read. They are private to this
// module (the JS side only asks for their sizes): quants are stored pre-widened to i16, and in
// the lane order each weight format unpacks to, so the inner loops need no shuffles.

/** One block of 32 activations (Q8_0/Q8_1 in ggml): 32 × i16, then d, Σq and s. */
export const ACT_BLOCK_BYTES: i32 = 80;
export const ACT_D: i32 = 64; // f32: the block scale, already rounded through fp16 as ggml stores it
export const ACT_SUM: i32 = 68; // i32: Σ of the 32 quants
export const ACT_S: i32 = 72; // f32: Q8_1's s = fp16(Σq · d), as a float

/** Lane orders of a 32-block's four i16x8 vectors. */
export const ORDER_NATURAL: i32 = 0; // q0..q7, q8..q15, q16..q23, q24..q31 (Q8_0 weights)
export const ORDER_NIBBLES: i32 = 1; // q0,q2..q14 | q16,q18..q30 | q1,q3..q15 | q17,q19..q31 (Q5 weights)
// ORDER_NIBBLES with the four vectors times 256, 16, 1 and 256 (|q| ≤ 127, so they stay within
// i16): Q4 kernels then dot the nibbles masked in place, without shifting them down first, and
// divide the block sum by 256 (exactly) once.
export const ORDER_NIBBLES_SCALED: i32 = 2;

/** One super-block of 256 activations (ggml's Q8_K): 256 × i16, 16 group sums, d. */
export const ACT_K_BLOCK_BYTES: i32 = 560;
export const ACT_K_BSUMS: i32 = 512; // 16 × i16: Σ of each group of 16 quants
export const ACT_K_D: i32 = 544; // f32
// Within each group of 16 the quants are stored as q0,q8,q1,q9,…,q7,q15: one i16x8 dot then
// sums the two products that ggml's scalar K-quant kernels add into the same lane (l mod 8).
