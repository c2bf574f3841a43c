/**
 * A ShardDO's KV-caches: one per session, holding the session's K/V for the shard's layers,
 * within the shard's KV budget. The page is a whole session's cache at its serving context
 * (n_ctx): the backends' caches are contiguous, so finer pages would need block tables in the
 * attention kernels. When a new cache does not fit, the least recently used caches of sessions
 * with no step in flight are evicted. An evicted session is not lost: its next step reports a
 * miss and the PipelineExecutor recomputes it from the tokens its SessionDO keeps.
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
    private readonly create: () => KVCache,
    /** Bytes of one session's cache (the same for all: they are allocated at n_ctx). */
    readonly cacheBytes: number,
  ) {}

  get bytes(): number {
    return this.entries.size * this.cacheBytes;
  }

  /** Positions the shard holds for `session` (0 when it holds no cache). */
  held(session: string): number {
    return this.entries.get(session)?.cache.length ?? 0;
  }

  has(session: string): boolean {
    return this.entries.has(session);
  }

  /**
   * The session's cache, created if needed (evicting idle ones to make room), and pinned until
   * `unpin`. undefined when it cannot fit now: every other cache has a step in flight.
   */
  pin(session: string): KVCache | undefined {
    let e = this.entries.get(session);
    if (!e) {
      if (!this.makeRoom()) return undefined;
      e = { cache: this.create(), lastUsed: 0, pins: 0 };
      this.entries.set(session, e);
      this.peakBytes = Math.max(this.peakBytes, this.bytes);
    }
    e.pins++;
    e.lastUsed = ++this.clock;
    return e.cache;
  }

  /** Whether pin(session) would succeed now. */
  canPin(session: string): boolean {
    if (this.entries.has(session) || this.bytes + this.cacheBytes <= this.budgetBytes) return true;
    for (const e of this.entries.values()) if (e.pins === 0) return true;
    return false;
  }

  unpin(session: string): void {
    const e = this.entries.get(session);
    if (e) e.pins = Math.max(0, e.pins - 1);
  }

  /** Drops one session's cache (it asked to be forgotten, or its state is inconsistent). */
  drop(session: string): void {
    this.entries.delete(session);
  }

  private makeRoom(): boolean {
    while (this.bytes + this.cacheBytes > this.budgetBytes) {
      let victim: [string, Entry] | undefined;
      for (const kv of this.entries) if (kv[1].pins === 0 && (!victim || kv[1].lastUsed < victim[1].lastUsed)) victim = kv;
      if (!victim) return false;
      this.entries.delete(victim[0]);
      this.evictions++;
    }
    return true;
  }
}
