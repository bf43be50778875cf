/**
 * Batches concurrent writes into one transaction: callers that arrive while a commit is in flight
 * wait for the next one together, so N concurrent accepts cost one commit (one fsync), not N.
 * Each caller's promise settles only after its own item is durably committed, with what the commit
 * said about that item (`commit` returns one result per item, in order).
 */
export class GroupCommit<T, R = void> {
  private pending: Array<{ item: T; resolve: (result: R) => void; reject: (error: unknown) => void }> = [];
  private flushing = false;
  private readonly commit: (batch: T[]) => Promise<R[]>;
  private readonly maxBatch: number;
  private readonly isolate: (error: unknown) => boolean;

  /**
   * `isolate(error)` says whether a failed batch is worth retrying item by item (a bad row) or
   * fails as a whole (the database is down: N more round trips would only make every caller wait).
   */
  constructor(
    commit: (batch: T[]) => Promise<R[]>,
    maxBatch = 500,
    isolate: (error: unknown) => boolean = () => true,
  ) {
    this.commit = commit;
    this.maxBatch = maxBatch;
    this.isolate = isolate;
  }

  add(item: T): Promise<R> {
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
        const results = await this.commit(batch.map((entry) => entry.item));
        for (const [i, entry] of batch.entries()) entry.resolve(results[i] as R);
      } catch (error) {
        if (batch.length === 1 || !this.isolate(error)) {
          for (const entry of batch) entry.reject(error);
          continue;
        }
        // One bad item must not fail its neighbours: retry each alone so only it reports the error.
        for (const entry of batch) {
          try {
            const [result] = await this.commit([entry.item]);
            entry.resolve(result as R);
          } catch (itemError) {
            entry.reject(itemError);
          }
        }
      }
    }
    this.flushing = false;
  }
}
