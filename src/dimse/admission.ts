/**
 * Which connections the SCP keeps when sockets are short. A real sender connects and sends its A-ASSOCIATE-RQ
 * within milliseconds; an idle or rejected socket has nothing to lose. So:
 * - association slots (dicom.maxAssociations) count accepted associations only (see association-policy.ts);
 * - each source address may hold at most `perSource` sockets; a newcomer over that limit takes the place of
 *   that source's oldest socket that is not an association (idle, or closing after a rejection/release), and is
 *   refused only when all of that source's sockets are associations;
 * - sockets that are not associations are capped together (`unassociated`); at the cap the oldest of them is
 *   closed to make room, closing ones before idle ones.
 * An idle flood therefore only ever displaces other idle sockets, never an association, and never keeps a
 * newcomer out. Pure: the SCP tells it what happens and closes what it says.
 */

export type ConnectionPhase = 'pending' | 'associated' | 'closing';

export interface AdmissionLimits {
  perSource: number;
  unassociated: number;
}

export interface Tracked {
  readonly id: string;
  readonly source: string;
  phase: ConnectionPhase;
  /** Admission order: older connections have smaller numbers. */
  readonly order: number;
}

export type AdmissionDecision = { admitted: true; evict: Tracked[] } | { admitted: false; reason: string };

export class Admission {
  private readonly connections = new Map<string, Tracked>();
  private counter = 0;

  constructor(private readonly limits: AdmissionLimits) {}

  get size(): number {
    return this.connections.size;
  }

  /**
   * Decides on a new connection. When admitted, the connection is tracked as pending and `evict` lists the
   * connections the caller must close (already untracked).
   */
  admit(id: string, source: string): AdmissionDecision {
    const evict: Tracked[] = [];
    const fromSource = [...this.connections.values()].filter((c) => c.source === source);
    if (fromSource.length >= this.limits.perSource) {
      const victim = oldestDisplaceable(fromSource);
      if (victim === undefined) {
        return {
          admitted: false,
          reason: `${source} already holds ${fromSource.length} associations, the limit is dicom.maxConnectionsPerSource=${this.limits.perSource}`,
        };
      }
      this.forget(victim, evict);
    }
    const unassociated = [...this.connections.values()].filter((c) => c.phase !== 'associated');
    if (unassociated.length >= this.limits.unassociated) {
      const victim = oldestDisplaceable(unassociated);
      if (victim !== undefined) this.forget(victim, evict);
    }
    this.connections.set(id, { id, source, phase: 'pending', order: this.counter++ });
    return { admitted: true, evict };
  }

  setPhase(id: string, phase: ConnectionPhase): void {
    const tracked = this.connections.get(id);
    if (tracked !== undefined) tracked.phase = phase;
  }

  remove(id: string): void {
    this.connections.delete(id);
  }

  private forget(victim: Tracked, into: Tracked[]): void {
    this.connections.delete(victim.id);
    into.push(victim);
  }
}

function oldestDisplaceable(candidates: readonly Tracked[]): Tracked | undefined {
  let best: Tracked | undefined;
  for (const c of candidates) {
    if (c.phase === 'associated') continue;
    if (best === undefined) {
      best = c;
      continue;
    }
    // Closing sockets go first: they have had their answer.
    const rank = (t: Tracked) => (t.phase === 'closing' ? 0 : 1);
    if (rank(c) < rank(best) || (rank(c) === rank(best) && c.order < best.order)) best = c;
  }
  return best;
}
