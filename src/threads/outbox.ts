/**
 * Gathers what one side of a thread boundary posts and sends it as one array: each postMessage has a
 * fixed cost (a copy, a wake-up of the other thread), and under load many calls and replies are made
 * together. `schedule` says how long to gather: setImmediate gathers everything one turn of the event
 * loop produced (every request read, every SMTP reply received); process.nextTick sends as soon as
 * the promise reactions that produce the items have run (the store thread's replies to a group
 * commit: 8% off the latency of an accept under load, docs/performance.md).
 */
export class Outbox<T> {
  private items: T[] = [];
  constructor(
    private readonly send: (batch: T[]) => void,
    private readonly schedule: (flush: () => void) => void = setImmediate,
  ) {}

  /** True when nothing waits: the next push starts a batch. */
  get empty(): boolean {
    return this.items.length === 0;
  }

  push(item: T): void {
    if (this.items.length === 0) this.schedule(this.flush);
    this.items.push(item);
  }

  private readonly flush = (): void => {
    const batch = this.items;
    this.items = [];
    this.send(batch);
  };
}
