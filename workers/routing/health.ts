/**
 * Health tracking: one circuit breaker per target.
 *
 *   closed ──(failureThreshold consecutive failures)──► open ──(cooldownMs)──► half-open
 *     ▲                                                  ▲                        │
 *     └──────────────(the probe succeeds)────────────────┼────────────────────────┤
 *                                                        └──(the probe fails)─────┘
 *
 * While open a target is skipped; after the cooldown exactly one request is let through as a
 * probe (others still skip it) and its outcome closes or re-opens the circuit. State lives in
 * the isolate (module scope in a Worker): each isolate learns on its own, which is what a
 * breaker needs — fast local reaction, no coordination on the request path.
 */

export interface BreakerOptions {
  /** Consecutive failures that open the circuit. Default 3. */
  failureThreshold: number;
  /** How long an open circuit stays open before a probe. Default 30 s. */
  cooldownMs: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 3, cooldownMs: 30_000 };

export type BreakerState = "closed" | "open" | "half_open";

export interface BreakerSnapshot {
  state: BreakerState;
  consecutiveFailures: number;
  /** ms until an open circuit lets a probe through (0 otherwise). */
  retryInMs: number;
  successes: number;
  failures: number;
}

export class CircuitBreaker {
  private state: BreakerState = "closed";
  private consecutive = 0;
  private openedAt = 0;
  private probing = false;
  private successes = 0;
  private failures = 0;

  constructor(
    readonly options: BreakerOptions = DEFAULT_BREAKER,
    private readonly now: () => number = Date.now,
  ) {}

  /** May a request go to this target now? In half-open, true once (the probe) until it reports. */
  allow(): boolean {
    if (this.state === "closed") return true;
    if (this.state === "open") {
      if (this.now() - this.openedAt < this.options.cooldownMs) return false;
      this.state = "half_open";
      this.probing = false;
    }
    if (this.probing) return false;
    this.probing = true;
    return true;
  }

  success(): void {
    this.successes++;
    this.state = "closed";
    this.consecutive = 0;
    this.probing = false;
  }

  failure(): void {
    this.failures++;
    this.consecutive++;
    if (this.state === "half_open" || this.consecutive >= this.options.failureThreshold) {
      this.state = "open";
      this.openedAt = this.now();
    }
    this.probing = false;
  }

  /** The attempt ended without telling anything about the target (the client went away). */
  release(): void {
    this.probing = false;
  }

  snapshot(): BreakerSnapshot {
    const retryInMs = this.state === "open" ? Math.max(0, this.options.cooldownMs - (this.now() - this.openedAt)) : 0;
    return { state: this.state, consecutiveFailures: this.consecutive, retryInMs, successes: this.successes, failures: this.failures };
  }
}

/** Breakers by key (model + target id), created on first use. */
export class HealthTracker {
  private readonly breakers = new Map<string, CircuitBreaker>();

  constructor(
    readonly options: BreakerOptions = DEFAULT_BREAKER,
    private readonly now: () => number = Date.now,
  ) {}

  breaker(key: string): CircuitBreaker {
    let b = this.breakers.get(key);
    if (!b) {
      b = new CircuitBreaker(this.options, this.now);
      this.breakers.set(key, b);
    }
    return b;
  }

  snapshot(): Record<string, BreakerSnapshot> {
    return Object.fromEntries([...this.breakers].map(([k, b]) => [k, b.snapshot()]));
  }
}
