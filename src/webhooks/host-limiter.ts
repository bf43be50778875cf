/**
 * At most `limit` tasks at once per destination host; the others wait their turn in order. A
 * receiver that never answers then holds `limit` connections, not one per queued delivery, and the
 * POST's timeout starts only once it has its turn.
 */
export class HostLimiter {
  private readonly hosts = new Map<string, { active: number; waiting: Array<() => void> }>();

  constructor(private readonly limit: number) {}

  async run<T>(host: string, task: () => Promise<T>): Promise<T> {
    let entry = this.hosts.get(host);
    if (!entry) {
      entry = { active: 0, waiting: [] };
      this.hosts.set(host, entry);
    }
    if (entry.active >= this.limit) {
      const queued = entry;
      await new Promise<void>((resolve) => queued.waiting.push(resolve));
    } else {
      entry.active += 1;
    }
    try {
      return await task();
    } finally {
      const next = entry.waiting.shift();
      // The slot passes straight to the next waiter; the count stays.
      if (next) next();
      else {
        entry.active -= 1;
        if (entry.active === 0) this.hosts.delete(host);
      }
    }
  }

  /** Tasks running for `host` now. */
  active(host: string): number {
    return this.hosts.get(host)?.active ?? 0;
  }
}
