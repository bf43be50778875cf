import type { Worker } from "node:worker_threads";
import { Outbox } from "./outbox.js";
import {
  CLOSE_METHOD,
  DEADLINE_PASSED,
  type MethodOf,
  type ThreadApi,
  type ThreadCall,
  type ThreadEvent,
  type ThreadReply,
} from "./protocol.js";
import { fromWire } from "./wire-error.js";

/**
 * Mailroom's threads allocate fast and keep little, and V8 lets a thread's young generation grow to
 * about 32 MB by default: capped, a process stays well under 200 MB at full load, for a few percent
 * of throughput (docs/performance.md). The main thread gets the same treatment from the node flag in
 * `npm start` (docs/operations.md says how to pass it otherwise).
 */
export const THREAD_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 8 };

/** The arguments of an API method, and what its promise resolves to. */
type Args<F> = F extends (...args: infer A) => unknown ? A : never;
type Result<F> = F extends (...args: never[]) => infer R ? Awaited<R> : never;

type Pending = {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  method: string;
  /** performance.now() when the call was made, if it is timed (see onLatency); else 0. */
  started: number;
};

export interface ThreadClientOptions {
  /** Called for each event the thread raises by itself. */
  onEvent?: (event: ThreadEvent) => void;
  /** The error every call gets once the thread has died (a crash inside it, or it was stopped). */
  goneError: (cause: Error) => Error;
  /**
   * Told how long a call took, from the call to its answer here (ms). Timed per batch, not per call:
   * only the first call of each batch that crosses to the thread, so under load, when a batch carries
   * many calls, the cost is a clock read per batch (metrics: mailroom_store_call_seconds).
   */
  onLatency?: (method: string, ms: number) => void;
}

/**
 * The calling side of a worker thread that serves calls (thread-server.ts): each call is a promise
 * answered by the thread. Calls made in one turn of the event loop cross in one message. An idle
 * thread does not keep the process alive (the CLI exits when its work is done).
 */
export class ThreadClient<Api extends ThreadApi> {
  private readonly outbox: Outbox<ThreadCall>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private goneWith: Error | undefined;
  private closing: Promise<void> | undefined;
  private readonly exited: Promise<void>;

  constructor(
    private readonly worker: Worker,
    private readonly options: ThreadClientOptions,
  ) {
    this.worker.unref();
    this.outbox = new Outbox((batch) => this.worker.postMessage(batch));
    this.worker.on("message", (batch: ThreadReply[]) => {
      for (const reply of batch) this.receive(reply);
    });
    this.worker.on("error", (error) => this.fail(error));
    this.exited = new Promise((resolve) => {
      this.worker.on("exit", (code) => {
        this.fail(new Error(`the thread exited with code ${code}`));
        resolve();
      });
    });
  }

  /** Set once the thread has died: every call, now and later, fails with it. */
  get gone(): Error | undefined {
    return this.goneWith;
  }

  /** Calls `method` of the thread's API with `args`; resolves to what the thread's method resolved to. */
  call<K extends MethodOf<Api>>(method: K, ...args: Args<Api[K]>): Promise<Result<Api[K]>> {
    return this.send({ id: this.nextId++, method, args });
  }

  /**
   * As `call`, but gives up after `timeoutMs`: rejects with `timeoutError`, and the thread skips the
   * call if it has not started it by then. A call already running cannot be stopped from here; its late
   * answer is dropped.
   */
  callWithin<K extends MethodOf<Api>>(
    timeoutMs: number,
    timeoutError: () => Error,
    method: K,
    ...args: Args<Api[K]>
  ): Promise<Result<Api[K]>> {
    const id = this.nextId++;
    const answer = this.send<Result<Api[K]>>({ id, method, args, deadline: Date.now() + timeoutMs });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        if (!this.pending.delete(id)) return;
        if (this.pending.size === 0 && !this.closing) this.worker.unref();
        reject(timeoutError());
      }, timeoutMs);
    });
    // The thread's "not started in time" can arrive before this side's timer fires: the same timeout.
    const answered = answer.catch((error: unknown) => {
      throw (error as { code?: unknown } | null)?.code === DEADLINE_PASSED ? timeoutError() : error;
    });
    return Promise.race([answered, timeout]).finally(() => clearTimeout(timer));
  }

  private send<R>(call: ThreadCall): Promise<R> {
    if (this.goneWith) return Promise.reject(this.goneWith);
    if (this.pending.size === 0) this.worker.ref();
    const started = this.options.onLatency !== undefined && this.outbox.empty ? performance.now() : 0;
    this.outbox.push(call);
    return new Promise((resolve, reject) => {
      this.pending.set(call.id, {
        resolve: resolve as (value: unknown) => void,
        reject,
        method: call.method,
        started,
      });
    });
  }

  /** Asks the thread to finish (its `close` method), waits for it to end, and stops it if it would not. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.worker.ref();
      try {
        // The thread answers, then ends by itself (so a profiler in it can write out).
        if (!this.goneWith) await this.call(CLOSE_METHOD as MethodOf<Api>, ...([] as never));
        await this.exited;
      } finally {
        await this.worker.terminate();
      }
    })();
    return this.closing;
  }

  private receive(reply: ThreadReply): void {
    if ("event" in reply) {
      this.options.onEvent?.(reply);
      return;
    }
    const call = this.pending.get(reply.id);
    if (!call) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0 && !this.closing) this.worker.unref();
    if (call.started !== 0) this.options.onLatency?.(call.method, performance.now() - call.started);
    if (reply.error) call.reject(fromWire(reply.error));
    else call.resolve(reply.value);
  }

  private fail(cause: Error): void {
    if (this.goneWith) return;
    this.goneWith = this.options.goneError(cause);
    for (const call of this.pending.values()) call.reject(this.goneWith);
    this.pending.clear();
  }
}
