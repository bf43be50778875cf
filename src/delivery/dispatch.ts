import type { EmailMessageRow } from "../store/store.js";
import { composeMime } from "./compose.js";
import type { Envelope } from "./envelope.js";
import type { SendReport, Transport } from "./transports/transport.js";

/** What one attempt came to, and the MIME it composed (set only on the attempt that composed it). */
export interface DispatchResult {
  report: SendReport;
  mime: string | undefined;
}

/**
 * One attempt of one message, from row to relay: compose its MIME (first attempt only; retries pass
 * the stored bytes so they send the very same message) and hand it to the transport.
 */
export interface Dispatcher {
  /** One sentence for the start-up log saying what happens to mail. */
  readonly description: string;
  dispatch(
    message: EmailMessageRow,
    envelope: Envelope,
    storedMime: string | undefined,
  ): Promise<DispatchResult>;
  /** Cuts the transport's connections: called once nothing still in flight is wanted. */
  close(): Promise<void>;
}

/** Composes and sends on the calling thread (capture, tests, and inside the relay thread itself). */
export class LocalDispatcher implements Dispatcher {
  readonly description: string;

  constructor(private readonly transport: Transport) {
    this.description = transport.description;
  }

  async dispatch(
    message: EmailMessageRow,
    envelope: Envelope,
    storedMime: string | undefined,
  ): Promise<DispatchResult> {
    const mime = storedMime === undefined ? composeMime(message) : undefined;
    const report = await this.transport.send({ envelope, raw: storedMime ?? (mime as string) });
    return { report, mime };
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
