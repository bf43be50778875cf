import { Worker } from "node:worker_threads";
import { THREAD_RESOURCE_LIMITS, ThreadClient } from "../threads/thread-client.js";
import { fromWire, type WireError } from "../threads/wire-error.js";
import type { Dispatcher, DispatchJob, DispatchResult } from "./dispatch.js";
import type { DeliveryLogger } from "./logger.js";
import { describeMx, type MxSettings } from "./mx/mx-settings.js";
import { RELAY_FAILURE_MESSAGE } from "./relay-failure-log.js";
import { describeRelay, type SmtpSettings } from "./transports/smtp-settings.js";
import type { TransportConnections } from "./transports/transport.js";

/** What the relay thread delivers through: a relay, or each domain's MX hosts (`{ mx }`). */
export type ThreadSettings = SmtpSettings | { mx: MxSettings };

/** What the relay thread answers (relay-thread.ts). */
export interface RelayThreadApi {
  dispatch(job: DispatchJob): Promise<DispatchResult>;
  /** The SMTP pool's connections (read per /metrics scrape). */
  connections(): Promise<TransportConnections | undefined>;
  close(): Promise<void>;
}

/**
 * Composes and relays mail in a worker thread of its own (relay-thread.ts): writing to the relay's
 * sockets, reading its replies and composing MIME were about a fifth of the main thread's work under
 * load, and the main thread (HTTP and the delivery worker's bookkeeping) was the limit
 * (docs/performance.md). Should the thread die (a bug), the deliveries in it fail as retryable
 * attempts and the next one starts a new thread.
 */
export class ThreadedDispatcher implements Dispatcher {
  readonly description: string;
  private thread: ThreadClient<RelayThreadApi>;
  private closing = false;

  constructor(
    private readonly settings: ThreadSettings,
    private readonly logger: Pick<DeliveryLogger, "warn">,
  ) {
    this.description = "mx" in settings ? describeMx(settings.mx) : describeRelay(settings);
    this.thread = this.start();
  }

  dispatch(job: DispatchJob): Promise<DispatchResult> {
    if (this.thread.gone && !this.closing) this.thread = this.start();
    return this.thread.call("dispatch", job);
  }

  close(): Promise<void> {
    this.closing = true;
    return this.thread.close();
  }

  /** Asked of the thread running now; a thread that died has no connections (none is started to ask). */
  async connections(): Promise<TransportConnections | undefined> {
    if (this.thread.gone || this.closing) return { open: 0, opened: 0 };
    return this.thread.call("connections");
  }

  private start(): ThreadClient<RelayThreadApi> {
    const worker = new Worker(new URL("./relay-thread.js", import.meta.url), {
      workerData: this.settings,
      resourceLimits: THREAD_RESOURCE_LIMITS,
    });
    return new ThreadClient(worker, {
      onEvent: (event) => {
        if (event.event !== "relayFailure") return;
        const line = event.data as { err: WireError; failuresSinceLastLog: number };
        this.logger.warn(
          { err: fromWire(line.err), failuresSinceLastLog: line.failuresSinceLastLog },
          RELAY_FAILURE_MESSAGE,
        );
      },
      goneError: (cause) => new Error(`the relay thread stopped: ${cause.message}`),
    });
  }
}
