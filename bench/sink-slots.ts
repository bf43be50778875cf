/** Layout of the counters our sink's worker thread shares with the main thread (a Float64Array). */
export const SLOT = {
  messages: 0,
  bytes: 1,
  duplicates: 2,
  firstAt: 3,
  lastAt: 4,
  sessions: 5,
  /** Messages with a DKIM-Signature header. */
  signed: 6,
} as const;

export const SLOTS = 7;
