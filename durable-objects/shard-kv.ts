/**
 * A ShardDO's KV-caches: one per session, holding the session's K/V for the shard's layers,
 * within the shard's KV budget. Caches are paged (KVCacheShape.paged): a session holds the pages
 * its positions need, KV_PAGE positions each, not a whole n_ctx, and the budget counts pages.
 * Pages are claimed before a step runs (`reserve`); when they do not fit, the least recently used
 * caches of sessions with no step in flight are evicted whole. An evicted session is not lost: its
 * next step reports a miss and the PipelineExecutor recomputes it from the tokens its SessionDO
 * keeps. A session's pages are contiguous per layer (a cache that grows moves), so the attention
 * kernels need no block tables.
 */
import type { KVCache } from "../kernels/model/backend.ts";

interface Entry {
  cache: KVCache;
  lastUsed: number;
  /** Steps in flight: a pinned cache is never evicted. */
  pins: number;
}

export class ShardKvPool {
  private readonly entries = new Map<string, Entry>();
  private clock = 0;
  evictions = 0;
  peakBytes = 0;

  constructor(
    readonly budgetBytes: number,
    /** A new, empty paged cache. */
    private readonly create: () => KVCache,
    /** Bytes of `positions` positions of a session's cache, in whole pages. */
    private readonly bytesFor: (positions: number) => number,
  ) {}

  get bytes(): number {
    let total = 0;
    for (const e of this.entries.values()) total += e.cache.bytes;
    return total;
  }

  get sessions(): number {
    return this.entries.size;
  }

  /** Positions the shard holds for `session` (0 when it holds no cache). */
  held(session: string): number {
    return this.entries.get(session)?.cache.length ?? 0;
  }

  has(session: string): boolean {
    return this.entries.has(session);
  }

  /** Bytes `session` needs on top of what it holds to reach `positions`. */
  private growth(session: string, positions: number): number {
    return Math.max(0, this.bytesFor(positions) - (this.entries.get(session)?.cache.bytes ?? 0));
  }

  /** Whether pin(session, positions) would succeed now. */
  canPin(session: string, positions: number): boolean {
    let free = this.budgetBytes - this.bytes;
    for (const [s, e] of this.entries) if (s !== session && e.pins === 0) free += e.cache.bytes;
    return this.growth(session, positions) <= free;
  }

  /**
   * The session's cache with pages for `positions` (created if needed; idle caches evicted to make
   * room), pinned until `unpin`. undefined when it cannot fit now: the others have steps in flight.
   */
  pin(session: string, positions: number): KVCache | undefined {
    if (!this.makeRoom(this.growth(session, positions), session)) return undefined;
    let e = this.entries.get(session);
    if (!e) {
      e = { cache: this.create(), lastUsed: 0, pins: 0 };
      this.entries.set(session, e);
    }
    e.cache.reserve?.(positions);
    this.peakBytes = Math.max(this.peakBytes, this.bytes);
    e.pins++;
    e.lastUsed = ++this.clock;
    return e.cache;
  }

  unpin(session: string): void {
    const e = this.entries.get(session);
    if (e) e.pins = Math.max(0, e.pins - 1);
  }

  /** Drops one session's cache (it asked to be forgotten, or its state is inconsistent); a pinned one stays. */
  drop(session: string): void {
    if ((this.entries.get(session)?.pins ?? 0) === 0) this.entries.delete(session);
  }

  /** Evicts idle caches, least recently used first (never `keep`'s), until `need` more bytes fit. */
  private makeRoom(need: number, keep: string): boolean {
    while (this.bytes + need > this.budgetBytes) {
      let victim: [string, Entry] | undefined;
      for (const kv of this.entries) if (kv[0] !== keep && kv[1].pins === 0 && (!victim || kv[1].lastUsed < victim[1].lastUsed)) victim = kv;
      if (!victim) return false;
      this.entries.delete(victim[0]);
      this.evictions++;
    }
    return true;
  }
}
