/**
 * Failed logins counted per key (a user name, or a client address) over a sliding window: once a key has failed
 * `max` times within the window, further attempts are refused until the oldest failure leaves it. In memory on
 * purpose: a restart forgets the counts, which costs an attacker a restart they cannot cause.
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until `key` may try again, or undefined when it may try now. */
  retryAfterSeconds(key: string): number | undefined {
    const recent = this.recent(key);
    if (recent.length < this.max) return undefined;
    const oldest = recent[recent.length - this.max] ?? this.now();
    return Math.max(1, Math.ceil((oldest + this.windowMs - this.now()) / 1000));
  }

  fail(key: string): void {
    const recent = this.recent(key);
    recent.push(this.now());
    this.failures.set(key, recent);
    // Bound the memory a flood of made-up user names can take: forget keys whose failures left the window.
    if (this.failures.size > 10_000) for (const k of [...this.failures.keys()]) this.recent(k);
  }

  succeed(key: string): void {
    this.failures.delete(key);
  }

  private recent(key: string): number[] {
    const since = this.now() - this.windowMs;
    const recent = (this.failures.get(key) ?? []).filter((at) => at > since);
    if (recent.length === 0) this.failures.delete(key);
    else this.failures.set(key, recent);
    return recent;
  }
}
