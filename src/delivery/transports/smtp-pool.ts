import {
  SmtpConnection,
  type SmtpConnectionEvents,
  type SmtpConnectionOptions,
  type SmtpEnvelope,
  SmtpError,
  type SmtpSendResult,
  type SmtpTransaction,
} from "./smtp-connection.js";
import type { TransportConnections } from "./transport.js";

export interface SmtpPoolOptions extends SmtpConnectionOptions {
  /** At most this many connections, opened when needed and kept for the next messages. */
  poolSize: number;
}

interface Job extends SmtpTransaction {
  resolve(result: SmtpSendResult): void;
  reject(error: SmtpError): void;
  /** Already moved once from a connection that had been dropped while it waited in the pool. */
  retried: boolean;
}

/**
 * Up to `poolSize` SmtpConnections to one relay, opened lazily and reused; sends beyond them wait in
 * a FIFO queue. A connection that fails is dropped and the next send opens a fresh one; one that
 * stays idle for a socket timeout says QUIT. Connection-level failures are also passed to `onError`
 * (the send that met one reports it as well).
 */
export class SmtpPool {
  private readonly idle: SmtpConnection[] = [];
  private readonly queue: Job[] = [];
  /** Every connection whose socket is not closed yet, for close(). */
  private readonly connections = new Set<SmtpConnection>();
  /** Connections that count against poolSize: opening, busy or idle. */
  private open = 0;
  /** Connections opened since the pool was made (/metrics). */
  private opened = 0;
  private closed = false;
  private allClosed: (() => void) | undefined;
  private readonly events: SmtpConnectionEvents = {
    gone: (connection) => {
      this.open--;
      const index = this.idle.indexOf(connection);
      if (index >= 0) this.idle.splice(index, 1);
    },
    closed: (connection) => {
      this.connections.delete(connection);
      if (this.connections.size === 0) this.allClosed?.();
    },
  };

  constructor(
    private readonly options: SmtpPoolOptions,
    private readonly onError: (error: Error) => void,
  ) {}

  /** How many connections are open now and were ever opened: read by /metrics, per scrape. */
  counts(): TransportConnections {
    return { open: this.open, opened: this.opened };
  }

  /** Sends waiting for a connection. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves with the relay's final reply; rejects with an SmtpError (a refusal or a failure). */
  send(envelope: SmtpEnvelope, raw: string): Promise<SmtpSendResult> {
    if (this.closed) return Promise.reject(poolClosed());
    return new Promise<SmtpSendResult>((resolve, reject) => {
      const job: Job = { envelope, raw, resolve, reject, retried: false };
      const connection = this.idle.pop();
      if (connection) void this.run(connection, job);
      else if (this.open < this.options.poolSize) void this.connect(job);
      else this.queue.push(job);
    });
  }

  /**
   * Closes every connection: idle ones say QUIT (a relay counts connections dropped without it as
   * errors), busy ones are cut at once, and what is in flight or waiting fails as "Connection pool was
   * closed". Resolves once every socket has closed (a QUIT gets a short grace, see smtp-connection.ts).
   */
  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      const error = poolClosed();
      const idle = new Set(this.idle.splice(0));
      for (const job of this.queue.splice(0)) job.reject(error);
      for (const connection of [...this.connections]) {
        if (idle.has(connection)) connection.discard();
        else connection.destroy(error);
      }
    }
    return new Promise((resolve) => {
      if (this.connections.size === 0) resolve();
      else this.allClosed = resolve;
    });
  }

  private async connect(job: Job): Promise<void> {
    const connection = new SmtpConnection(this.options, this.events);
    this.open++;
    this.opened++;
    this.connections.add(connection);
    try {
      await connection.opened();
    } catch (error) {
      this.fail(job, error as SmtpError);
      this.openMore();
      return;
    }
    await this.run(connection, job);
  }

  /**
   * Sends `job`, then whatever waits in the queue, over `connection` while it stays usable. The
   * connection may take the next job while it writes a message (`ahead`: its envelope goes out with
   * that message's data); should the connection die first, that job goes back to the front of the queue.
   */
  private async run(connection: SmtpConnection, first: Job): Promise<void> {
    let job = first;
    let ahead: Job | undefined;
    const takeNext = (): Job | undefined => {
      if (!this.closed) ahead = this.queue.shift();
      return ahead;
    };
    for (;;) {
      try {
        job.resolve(await connection.send(job, takeNext));
      } catch (error) {
        const failure = error as SmtpError;
        if (
          !this.closed &&
          !job.retried &&
          connection.sends > 1 &&
          !connection.contentWritten &&
          isTransient(failure)
        ) {
          // The relay dropped a connection that waited in the pool before a byte of the message
          // went out: the message tries a fresh connection (once) instead of failing.
          job.retried = true;
          this.queue.unshift(job);
        } else {
          this.fail(job, failure);
        }
      }
      if (connection.usable && connection.needsReset) await connection.reset();
      if (this.closed || !connection.usable) break;
      const next = ahead ?? this.queue.shift();
      ahead = undefined;
      if (next === undefined) {
        connection.park();
        this.idle.push(connection);
        return;
      }
      job = next;
    }
    if (ahead) {
      // Only its envelope went out, on a connection that is gone: it starts over on another one.
      if (this.closed) ahead.reject(poolClosed());
      else this.queue.unshift(ahead);
    }
    if (connection.usable) connection.discard();
    this.openMore();
  }

  /** Opens connections for queued sends while there is room. */
  private openMore(): void {
    while (!this.closed && this.queue.length > 0 && this.open < this.options.poolSize) {
      void this.connect(this.queue.shift() as Job);
    }
  }

  private fail(job: Job, error: SmtpError): void {
    job.reject(error);
    if (!this.closed && error.code !== "EENVELOPE" && error.code !== "EMESSAGE") this.onError(error);
  }
}

/** The connection ended rather than refused what was sent over it (nodemailer's isTransientError). */
function isTransient(error: SmtpError): boolean {
  return (
    error.responseCode === 421 ||
    error.code === "ECONNECTION" ||
    error.code === "ESOCKET" ||
    error.code === "ETIMEDOUT"
  );
}

function poolClosed(): SmtpError {
  return new SmtpError("Connection pool was closed", "ECONNECTION", "CONN");
}
