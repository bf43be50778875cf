import { DeliveryErrorCodes } from "../domain/errors.js";
import { newSid } from "../domain/ids.js";
import type { DeliveryMetrics } from "../metrics/metrics.js";
import { type EmailContent, readStoredContent, storedContentOf } from "../model/email-message.js";
import type { DeliveryJob } from "../services/email-messages.js";
import type { AttemptRecord, EmailMessageRow, MailStore, RetryContext } from "../store/types.js";
import { isStoreFull, isStoreUnavailable } from "../store/unavailable.js";
import type { Dispatcher, DispatchJob, DispatchResult } from "./dispatch.js";
import type { SigningKey } from "./dkim-sign.js";
import { type Envelope, envelopeFor } from "./envelope.js";
import { type AttemptHistory, NO_HISTORY, readHistory } from "./history.js";
import type { DeliveryLogger } from "./logger.js";
import { judge, type Verdict } from "./outcome.js";
import type { RetryPolicy } from "./retry-policy.js";
import { type SendReport, sameForAll } from "./transports/transport.js";

/** What the steps of one attempt share: the worker's parts and settings. */
export interface StepContext {
  store: MailStore;
  dispatcher: Dispatcher;
  logger: DeliveryLogger;
  /** Told of each recorded attempt (/metrics). */
  metrics?: DeliveryMetrics | undefined;
  /** DKIM keys by From domain (the sign step); absent: nothing is signed. */
  signingKeys?: SigningKeySource | undefined;
  policy: RetryPolicy;
  /** The lease holder: only its records settle the message. */
  owner: string;
  /** True once the worker gave up on its deliveries at shutdown: results are then dropped. */
  abandoned(): boolean;
  /** A retry falls due at `at`: the worker looks at the queue by then. */
  retryDueAt(at: number): void;
  /**
   * Recording an attempt failed because the store is full or unreachable (`failures` times in a row):
   * the worker stops claiming, waits a moment, and resolves true to try again (false: give up, it is
   * stopping).
   */
  recordFailed(error: unknown, failures: number): Promise<boolean>;
  /** An attempt was recorded after failures: the worker claims again. */
  recordStored(): void;
}

/** Where the sign step finds a message's DKIM keys (src/domains/domain-directory.ts). */
export interface SigningKeySource {
  /** The keys for this From address sent by this account; undefined: unsigned. A promise only while loading. */
  keysFor(
    accountSid: string,
    fromAddress: string,
  ): SigningKey[] | undefined | Promise<SigningKey[] | undefined>;
}

/** One attempt of one message, as it passes from step to step. */
export interface AttemptState {
  message: EmailMessageRow;
  content: EmailContent;
  /** The number of this attempt, from 1. */
  attempt: number;
  started: number;
  history: AttemptHistory;
  /** The MIME an earlier attempt composed and stored (retries send exactly it). */
  storedMime: string | undefined;
  /** Attachment bytes, when the accepting process handed them over. */
  attachments: ReadonlyMap<string, Uint8Array> | undefined;
  /** What to send (compose): the stored bytes, or what to compose them from. */
  mime: DispatchJob["mime"] | undefined;
  envelope: Envelope | undefined;
  result: DispatchResult | undefined;
  verdict: Verdict | undefined;
}

/** A step may end the attempt early ("stop"): nothing after it runs. */
export interface DeliveryStep {
  name: string;
  /** Returns (or resolves to) "stop" to end the attempt here. */
  run(state: AttemptState, context: StepContext): unknown;
}

/**
 * Reads what the attempt starts from: the content, and for a retry the earlier attempts and stored MIME
 * (read from the store unless given). Synchronous for a first attempt: no promise per message.
 */
export function startAttempt(
  job: DeliveryJob,
  retry: RetryContext | undefined,
  store: MailStore,
): AttemptState | Promise<AttemptState> {
  const { message } = job;
  if (message.num_attempts === 0) return attemptState(job, undefined);
  if (retry !== undefined) return attemptState(job, retry);
  return store
    .findRetryContexts([message.sid])
    .then((contexts) => attemptState(job, contexts.get(message.sid)));
}

function attemptState(job: DeliveryJob, context: RetryContext | undefined): AttemptState {
  const { message } = job;
  // Every field from the start, those the steps fill in too: one shape for every attempt, all of it
  // in the object (fields added later would change its shape four times and need a second allocation).
  return {
    message,
    content: job.content ?? readStoredContent(storedContentOf(message)),
    attempt: message.num_attempts + 1,
    started: Date.now(),
    history: context ? readHistory(context.attempts) : NO_HISTORY,
    storedMime: context?.mime,
    attachments: job.attachments,
    mime: undefined,
    envelope: undefined,
    result: undefined,
    verdict: undefined,
  };
}

/**
 * Routes the attempt: the envelope (recipients earlier attempts settled are left out). With
 * MAILROOM_DELIVERY_MODE=mx the transport splits it by domain in the relay thread (src/delivery/mx/),
 * where the DNS cache, the pools and each domain's pacing live.
 */
const route: DeliveryStep = {
  name: "route",
  run(state) {
    state.envelope = envelopeFor(state.content, state.history.settled);
  },
};

/**
 * What to send: the stored MIME on a retry; on the first attempt the input to compose it from
 * (composing itself happens where the dispatcher sends, in the relay thread), with the attachment
 * bytes read from the store unless the accepting process handed them over.
 */
const compose: DeliveryStep = {
  name: "compose",
  run(state, { store }) {
    if (state.storedMime !== undefined) {
      state.mime = { stored: state.storedMime };
      return;
    }
    const { attachments } = state.content;
    // Synchronous unless bytes must be read: a promise per attempt is not free on the main thread.
    if (attachments.length === 0) return composeFrom(state, undefined);
    if (state.attachments) return composeFrom(state, state.attachments);
    return store.findBlobs(attachments.map((a) => a.sha256)).then((bytes) => composeFrom(state, bytes));
  },
};

function composeFrom(state: AttemptState, attachments: ReadonlyMap<string, Uint8Array> | undefined): void {
  const { message } = state;
  state.mime = {
    compose: {
      stored: storedContentOf(message),
      messageId: message.message_id,
      date: message.date_created,
      attachments,
    },
  };
}

/**
 * DKIM: at the first attempt, the keys of the From domain (or of a parent domain the account's
 * lineage owns) go with the compose job, and the side that composes signs (dispatch.ts): the stored
 * MIME carries the signature, so `/Mime` and retries send the same bytes. A message with no key
 * costs a map lookup or two.
 */
const sign: DeliveryStep = {
  name: "sign",
  run(state, { signingKeys }) {
    const mime = state.mime;
    if (signingKeys === undefined || mime === undefined || !("compose" in mime)) return;
    const keys = signingKeys.keysFor(state.message.account_sid, state.content.from.address);
    if (keys === undefined) return;
    if (keys instanceof Promise) {
      return keys.then((found) => {
        if (found !== undefined) mime.compose.dkim = found;
      });
    }
    mime.compose.dkim = keys;
  },
};

/** Hands the attempt to the dispatcher; Mailroom's own failures become a retryable report too. */
const send: DeliveryStep = {
  name: "send",
  async run(state, { dispatcher, logger, abandoned }) {
    const job: DispatchJob = {
      messageSid: state.message.sid,
      envelope: state.envelope as Envelope,
      mime: state.mime as DispatchJob["mime"],
    };
    // Defensive: were every recipient already settled, finish the message rather than send an empty envelope.
    if (job.envelope.to.length === 0) {
      state.result = {
        report: { recipients: [], smtpCode: null, response: null, failure: null },
        mime: undefined,
      };
      return;
    }
    try {
      state.result = await dispatcher.dispatch(job);
    } catch (error) {
      if (abandoned()) {
        // A normal stop cut this delivery at the shutdown timeout: its lease was released, nothing to report.
        logger.debug({ sid: state.message.sid }, "delivery stopped by shutdown");
        return "stop";
      }
      logger.error({ err: error, sid: state.message.sid }, "delivery: unexpected error");
      const report: SendReport = {
        recipients: sameForAll(job.envelope.to, "deferred", null, null),
        smtpCode: null,
        response: null,
        failure: {
          code: DeliveryErrorCodes.DeliveryError,
          message: `Mailroom failed while delivering this message (${error instanceof Error ? error.message : String(error)}); the server log has the details.`,
        },
      };
      state.result = { report, mime: undefined };
    }
  },
};

/** Decides the message's next state from the report and the history: sent, retry at T, or failed. */
const judgeStep: DeliveryStep = {
  name: "judge",
  run(state, { policy, abandoned }) {
    const { report } = state.result as DispatchResult;
    state.verdict = judge(report, {
      attempt: state.attempt,
      history: state.history,
      acceptedAt: state.message.date_created,
      now: Date.now(),
      policy,
    });
    if (abandoned()) return "stop";
  },
};

/**
 * Records the attempt with the message's new state, in one transaction. Stops when the lease ran out
 * meanwhile: another worker took the message over and decides its status.
 */
const record: DeliveryStep = {
  name: "record",
  async run(state, context) {
    const { owner, logger } = context;
    const { report, mime } = state.result as DispatchResult;
    const verdict = state.verdict as Verdict;
    const { message } = state;
    const now = Date.now();
    const applied = await recordUntilStored(context, {
      owner,
      hasStatusCallback: message.status_callback !== null,
      mime,
      attempt: {
        sid: newSid("EA"),
        message_sid: message.sid,
        account_sid: message.account_sid,
        attempt: state.attempt,
        date_started: state.started,
        date_finished: now,
        outcome: verdict.outcome,
        smtp_code: report.smtpCode,
        response: report.response,
        error_code: verdict.attemptFailure?.code ?? null,
        error_message: verdict.attemptFailure?.message ?? null,
        recipients: JSON.stringify(report.recipients),
      },
      status: verdict.status,
      errorCode: verdict.errorCode,
      errorMessage: verdict.errorMessage,
      retryAt: verdict.retryAt,
      dateDelivered: verdict.status === "sent" ? now : null,
    });
    if (applied) return;
    logger.warn(
      { sid: message.sid, attempt: state.attempt },
      "delivery: the lease ran out during this attempt and another worker took the message over; it decides the status",
    );
    return "stop";
  },
};

/**
 * Records an attempt, trying again while the store is full or unreachable. The message has been sent
 * (or refused): giving up here would leave it leased and unrecorded, and sent a second time once the
 * lease ran out (issue 12 item 16: 116 of 117 messages delivered during a full disk went out twice).
 */
async function recordUntilStored(context: StepContext, record: AttemptRecord): Promise<boolean> {
  for (let failures = 1; ; failures++) {
    try {
      const applied = await context.store.recordAttempt(record);
      if (failures > 1) context.recordStored();
      return applied;
    } catch (error) {
      if (!(isStoreFull(error) || isStoreUnavailable(error))) throw error;
      if (!(await context.recordFailed(error, failures))) throw error;
    }
  }
}

/**
 * Logs the outcome and wakes the worker for an early retry. The attempt's events, and a final status's
 * StatusCallback, were queued with the record; the store tells the webhook sender (listenWebhookJobs).
 */
const notify: DeliveryStep = {
  name: "notify",
  run(state, { logger, retryDueAt, metrics }) {
    const verdict = state.verdict as Verdict;
    metrics?.attemptRecorded(
      verdict.status,
      (state.result as DispatchResult).report.smtpCode,
      state.message.date_created,
    );
    const fields = {
      sid: state.message.sid,
      attempt: state.attempt,
      outcome: verdict.outcome,
      status: verdict.status,
    };
    if (verdict.status === "queued")
      logger.debug({ ...fields, error: verdict.errorMessage }, "delivery deferred");
    else if (verdict.status === "failed")
      logger.warn({ ...fields, error: verdict.errorMessage }, "delivery failed");
    else logger.debug(fields, "delivered");
    if (verdict.retryAt !== null) retryDueAt(verdict.retryAt);
  },
};

/** A delivery attempt, step by step (docs/architecture.md). */
export const DELIVERY_STEPS: readonly DeliveryStep[] = [
  compose,
  sign,
  route,
  send,
  judgeStep,
  record,
  notify,
];

/** Runs one attempt through every step, until one stops it. */
export async function runAttempt(state: AttemptState, context: StepContext): Promise<void> {
  for (const step of DELIVERY_STEPS) {
    let result = step.run(state, context);
    // Only the steps that wait get awaited: each await of a plain value costs a turn of the microtask queue.
    if (result instanceof Promise) result = await result;
    if (result === "stop") return;
  }
}
