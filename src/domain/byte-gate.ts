/**
 * A budget of bytes shared by work that holds large data in memory (request bodies, messages being
 * delivered): work takes its size before it starts and gives it back when done. What does not fit
 * waits in arrival order, so small work cannot starve large work; a single piece larger than the
 * whole budget runs alone rather than never.
 */
export class ByteGate {
  private used = 0;
  private readonly waiting: Array<{ bytes: number; admit: () => void }> = [];

  constructor(readonly capacity: number) {}

  /** Bytes taken right now. */
  get inUse(): number {
    return this.used;
  }

  /** Takes `bytes` now if they fit and nothing waits; false otherwise (nothing taken). */
  tryTake(bytes: number): boolean {
    if (this.waiting.length > 0 || !this.fits(bytes)) return false;
    this.used += bytes;
    return true;
  }

  /**
   * Waits for `bytes`, then takes them and calls `admit`. Returns a cancel function: true when the
   * wait was cancelled before admission (nothing taken), false when it had been admitted already.
   */
  wait(bytes: number, admit: () => void): () => boolean {
    const waiter = { bytes, admit };
    this.waiting.push(waiter);
    this.admitWaiting();
    return () => {
      const at = this.waiting.indexOf(waiter);
      if (at < 0) return false;
      this.waiting.splice(at, 1);
      // The one cancelled may have held back smaller ones behind it.
      this.admitWaiting();
      return true;
    };
  }

  /** Resolves once `bytes` are taken. */
  take(bytes: number): Promise<void> {
    if (this.tryTake(bytes)) return Promise.resolve();
    return new Promise((resolve) => this.wait(bytes, resolve));
  }

  give(bytes: number): void {
    this.used -= bytes;
    this.admitWaiting();
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.capacity;
  }

  private admitWaiting(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0] as { bytes: number; admit: () => void };
      if (!this.fits(next.bytes)) return;
      this.waiting.shift();
      this.used += next.bytes;
      next.admit();
    }
  }
}
