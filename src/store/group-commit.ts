type Entry<T, R> = { item: T; resolve: (result: R) => void; reject: (error: unknown) => void };

export interface GroupCommitOptions {
  /** The most items one transaction takes. */
  maxBatch?: number;
  /**
   * How many transactions may be in flight at once. One (SQLite: a single writer) makes callers that
   * arrive during a commit wait for the next one together. More (PostgreSQL, one connection each)
   * lets a new batch start while another waits for its commit, so an accept waits for about one
   * commit instead of up to two; the database still flushes concurrent commits together.
   */
  lanes?: number;
  /**
   * Says whether a failed batch is worth retrying item by item (a bad row) or fails as a whole (the
   * database is down: N more round trips would only make every caller wait).
   */
  isolate?: (error: unknown) => boolean;
}

/**
 * Batches concurrent writes into one transaction, so N concurrent accepts cost one commit (one
 * fsync), not N. Each caller's promise settles only after its own item is durably committed, with
 * what the commit said about that item (`commit` returns one result per item, in order).
 */
export class GroupCommit<T, R = void> {
  private pending: Entry<T, R>[] = [];
  private scheduled = false;
  private inFlight = 0;
  private readonly maxBatch: number;
  private readonly lanes: number;
  private readonly isolate: (error: unknown) => boolean;

  constructor(
    private readonly commit: (batch: T[]) => Promise<R[]>,
    options: GroupCommitOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.lanes = options.lanes ?? 1;
    this.isolate = options.isolate ?? (() => true);
  }

  add(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (!this.scheduled && this.inFlight < this.lanes) {
        this.scheduled = true;
        // Let the other requests of this event-loop turn join the batch.
        setImmediate(this.startBatches);
      }
    });
  }

  private readonly startBatches = (): void => {
    this.scheduled = false;
    while (this.pending.length > 0 && this.inFlight < this.lanes) {
      this.inFlight += 1;
      void this.run(this.pending.splice(0, this.maxBatch)).finally(() => {
        this.inFlight -= 1;
        // Whatever arrived during the commit goes next, together.
        this.startBatches();
      });
    }
  };

  private async run(batch: Entry<T, R>[]): Promise<void> {
    try {
      const results = await this.commit(batch.map((entry) => entry.item));
      for (const [i, entry] of batch.entries()) entry.resolve(results[i] as R);
    } catch (error) {
      if (batch.length === 1 || !this.isolate(error)) {
        for (const entry of batch) entry.reject(error);
        return;
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
}
