/**
 * Which deliveries are failing right now and since when, per destination: what /metrics and /healthz show so
 * that an outage is seen while its deliveries keep retrying (they no longer park, so nothing else would say so).
 *
 * In memory: the store keeps no first-failure time. After a restart, deliveries found pending with failed
 * attempts count as failing from the start-up (seed), so an alert may come up to delivery.alertAfterMinutes
 * later than it would have without the restart, never sooner.
 */
export interface FailingDelivery {
  destination: string;
  /** The last failure's cause code (FAILURE_CLASSES). */
  cause: string;
  /** When the first failure of the current run of failures was seen (ms since epoch). */
  since: number;
}

export interface DestinationTrouble {
  destination: string;
  /** Pending deliveries whose last attempt failed. */
  failing: number;
  /** How long the oldest of them has been failing, in seconds. */
  oldestFailingSeconds: number;
  /** The cause of the oldest one's last failure. */
  cause: string;
}

export class DeliveryWatch {
  private readonly failing = new Map<number, FailingDelivery>();
  /** Destinations whose outage has been announced in the log; forgotten when none of theirs fails any more. */
  private readonly announced = new Set<string>();

  /**
   * True once per outage of a destination: the first time its oldest failing delivery has been failing for
   * `thresholdMs`, so the log says so once (at error) instead of on every retry.
   */
  crossed(destination: string, now: number, thresholdMs: number): boolean {
    if (this.announced.has(destination)) return false;
    let oldest = Infinity;
    for (const f of this.failing.values()) if (f.destination === destination && f.since < oldest) oldest = f.since;
    if (now - oldest < thresholdMs) return false;
    this.announced.add(destination);
    return true;
  }

  /** A failed attempt that will be retried; keeps the first failure's time. */
  failed(id: number, destination: string, cause: string, now: number): void {
    const known = this.failing.get(id);
    this.failing.set(id, { destination, cause, since: known?.since ?? now });
  }

  /** Delivered or parked: not failing any more (parked ones are counted by the store's cxr_deliveries). */
  settled(id: number): void {
    const settled = this.failing.get(id);
    this.failing.delete(id);
    if (settled !== undefined && ![...this.failing.values()].some((f) => f.destination === settled.destination))
      this.announced.delete(settled.destination);
  }

  /** Per destination with failing deliveries, the oldest first. */
  troubles(now: number): DestinationTrouble[] {
    const by = new Map<string, { failing: number; oldest: FailingDelivery }>();
    for (const f of this.failing.values()) {
      const entry = by.get(f.destination);
      if (entry === undefined) by.set(f.destination, { failing: 1, oldest: f });
      else {
        entry.failing += 1;
        if (f.since < entry.oldest.since) entry.oldest = f;
      }
    }
    return [...by.entries()]
      .map(([destination, { failing, oldest }]) => ({
        destination,
        failing,
        oldestFailingSeconds: Math.max(0, Math.floor((now - oldest.since) / 1000)),
        cause: oldest.cause,
      }))
      .sort((a, b) => b.oldestFailingSeconds - a.oldestFailingSeconds || a.destination.localeCompare(b.destination));
  }
}
