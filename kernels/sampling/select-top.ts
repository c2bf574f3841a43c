/**
 * Partial selection without sorting the vocabulary: moves the k best of `ids[0..n)` to
 * `ids[0..k)` in ranked order, in O(n log k) time and no allocation. "Best" is the higher score;
 * equal scores rank the lower id first (so k = 1 is argmax with llama.cpp's first-index rule).
 * `ids[0..n)` stays a permutation of what it held.
 */

/** a ranks below b. */
const worse = (scores: ArrayLike<number>, a: number, b: number) => scores[a]! < scores[b]! || (scores[a]! === scores[b]! && a > b);

/** Restores the heap below `i` in ids[0..size): the root holds the worst of the kept items. */
function siftDown(ids: Int32Array, scores: ArrayLike<number>, i: number, size: number): void {
  const item = ids[i]!;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= size) break;
    const right = left + 1;
    const child = right < size && worse(scores, ids[right]!, ids[left]!) ? right : left;
    if (!worse(scores, ids[child]!, item)) break;
    ids[i] = ids[child]!;
    i = child;
  }
  ids[i] = item;
}

export function selectTop(ids: Int32Array, n: number, k: number, scores: ArrayLike<number>): void {
  k = Math.min(k, n);
  if (k <= 0) return;
  for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(ids, scores, i, k);
  // Most items lose to the worst kept one at once: compare against its cached score first.
  let floor = scores[ids[0]!]!;
  for (let j = k; j < n; j++) {
    const candidate = ids[j]!;
    if (scores[candidate]! < floor || !worse(scores, ids[0]!, candidate)) continue;
    ids[j] = ids[0]!;
    ids[0] = candidate;
    siftDown(ids, scores, 0, k);
    floor = scores[ids[0]!]!;
  }
  // Heap-sort: repeatedly move the worst kept item to the end, leaving the best first.
  for (let end = k - 1; end > 0; end--) {
    const worst = ids[0]!;
    ids[0] = ids[end]!;
    ids[end] = worst;
    siftDown(ids, scores, 0, end);
  }
}
