import { readStoredContent, type StoredContent } from "../model/stored-content.js";
import { type ComposeInput, composeMime } from "./compose.js";
import { type SigningKey, signMime } from "./dkim-sign.js";
import type { Envelope } from "./envelope.js";
import type { SendReport, Transport, TransportConnections } from "./transports/transport.js";

/** What one attempt came to, and the MIME it composed (set only on the attempt that composed it). */
export interface DispatchResult {
  report: SendReport;
  mime: string | undefined;
}

/**
 * One attempt of one message: the MIME to send, either stored by an earlier attempt (so retries send
 * the very same bytes) or to be composed now from `compose`, and the envelope.
 */
export interface DispatchJob {
  /** The message's SID (direct-to-MX paces domains per message). */
  messageSid?: string;
  envelope: Envelope;
  mime: { stored: string } | { compose: ComposeJob };
}

/**
 * What composing needs, as it crosses to the relay thread: the content as stored (its JSON and its
 * texts), read there. Strings cross threads for the cost of a copy; the object would be cloned field
 * by field on the main thread (measured: docs/performance.md).
 */
export type ComposeJob = Omit<ComposeInput, "content" | "attachments"> & {
  stored: StoredContent;
  /** Left out when there are none: a Map costs more to clone across threads than its absence. */
  attachments?: ComposeInput["attachments"];
  /** DKIM keys to sign with once composed (the sign step); absent: sent unsigned. */
  dkim?: SigningKey[];
};

/**
 * Takes one attempt from message to relay: compose its MIME when it has none yet, and hand it to the
 * transport. Either here (LocalDispatcher) or in the relay thread (ThreadedDispatcher).
 */
export interface Dispatcher {
  /** One sentence for the start-up log saying what happens to mail. */
  readonly description: string;
  dispatch(job: DispatchJob): Promise<DispatchResult>;
  /** Cuts the transport's connections: called once nothing still in flight is wanted. */
  close(): Promise<void>;
  /** The transport's connections to the relay, for /metrics; undefined without a relay (capture). */
  connections(): Promise<TransportConnections | undefined>;
}

/** Composes and sends on the calling thread (capture, tests, and inside the relay thread itself). */
export class LocalDispatcher implements Dispatcher {
  readonly description: string;

  constructor(private readonly transport: Transport) {
    this.description = transport.description;
  }

  async dispatch(job: DispatchJob): Promise<DispatchResult> {
    const mime = "compose" in job.mime ? await composeAndSign(job.mime.compose) : undefined;
    const raw = "stored" in job.mime ? job.mime.stored : (mime as string);
    const report = await this.transport.send({ envelope: job.envelope, raw, key: job.messageSid });
    return { report, mime };
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  async connections(): Promise<TransportConnections | undefined> {
    return this.transport.connections?.();
  }
}

/** The first attempt's MIME: composed, then signed here too, so what is stored is what was sent. */
async function composeAndSign(job: ComposeJob): Promise<string> {
  const mime = await composeMime(composeInput(job));
  return job.dkim === undefined ? mime : signMime(mime, job.dkim);
}

/**
 * The job's fields by name: a rest pattern and a spread would copy the object key by key, and a
 * message without attachments shares one empty map.
 */
function composeInput(job: ComposeJob): ComposeInput {
  return {
    content: readStoredContent(job.stored),
    messageId: job.messageId,
    date: job.date,
    attachments: job.attachments ?? NO_ATTACHMENTS,
  };
}

const NO_ATTACHMENTS: ReadonlyMap<string, Uint8Array> = new Map();
