/**
 * Batches concurrent writes into one transaction: callers that arrive while a commit is in flight
 * wait for the next one together, so N concurrent accepts cost one commit (one fsync), not N.
 * Each caller's promise settles only after its own item is durably committed.
 */
export class GroupCommit<T> {
  private pending: Array<{ item: T; resolve: () => void; reject: (error: unknown) => void }> = [];
  private flushing = false;
  private readonly commit: (batch: T[]) => Promise<void>;
  private readonly maxBatch: number;
  private readonly isolate: (error: unknown) => boolean;

  /**
   * `isolate(error)` says whether a failed batch is worth retrying item by item (a bad row) or
   * fails as a whole (the database is down: N more round trips would only make every caller wait).
   */
  constructor(
    commit: (batch: T[]) => Promise<void>,
    maxBatch = 500,
    isolate: (error: unknown) => boolean = () => true,
  ) {
    this.commit = commit;
    this.maxBatch = maxBatch;
    this.isolate = isolate;
  }

  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        // Let the other requests of this event-loop turn join the batch.
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      try {
        await this.commit(batch.map((entry) => entry.item));
        for (const entry of batch) entry.resolve();
      } catch (error) {
        if (batch.length === 1 || !this.isolate(error)) {
          for (const entry of batch) entry.reject(error);
          continue;
        }
        // One bad item must not fail its neighbours: retry each alone so only it reports the error.
        for (const entry of batch) {
          try {
            await this.commit([entry.item]);
            entry.resolve();
          } catch (itemError) {
            entry.reject(itemError);
          }
        }
      }
    }
    this.flushing = false;
  }
}
