import { setTimeout as sleep } from "node:timers/promises";
import type { EmailMessageRow } from "../store/types.js";
import type { DeliveryLogger } from "./logger.js";

export interface FinalStatus {
  status: "sent" | "failed";
  errorCode: number | null;
  errorMessage: string | null;
}

export interface StatusCallbackOptions {
  /** How long one POST may take. */
  timeoutMs: number;
  /** Pauses before the second, third, … POST after a failure; its length is the number of retries. */
  retryDelaysMs: readonly number[];
}

export const DEFAULT_CALLBACK_OPTIONS: StatusCallbackOptions = {
  timeoutMs: 5000,
  retryDelaysMs: [1000, 5000, 30_000],
};

/**
 * Tells an application its message reached a final status, by POSTing to the message's
 * StatusCallback the form fields a Restcomm (or Twilio) status callback carries. Runs beside
 * delivery, never inside it: a slow or failing callback URL cannot delay a message, change its
 * status or stop the worker. Callbacks live in memory only, so one still pending when the process
 * dies is not sent.
 */
export class StatusCallbacks {
  private readonly pending = new Set<Promise<void>>();
  private readonly abandon = new AbortController();

  constructor(
    private readonly logger: DeliveryLogger,
    private readonly options: StatusCallbackOptions = DEFAULT_CALLBACK_OPTIONS,
  ) {}

  notify(message: EmailMessageRow, final: FinalStatus): void {
    if (!message.status_callback) return;
    const form = new URLSearchParams({
      MessageSid: message.sid,
      AccountSid: message.account_sid,
      MessageStatus: final.status,
      To: message.to_addresses,
      From: message.from_address,
    });
    if (final.errorCode !== null) form.set("ErrorCode", String(final.errorCode));
    if (final.errorMessage !== null) form.set("ErrorMessage", final.errorMessage);
    const task = this.post(message.sid, message.status_callback, form).finally(() =>
      this.pending.delete(task),
    );
    this.pending.add(task);
  }

  /** Gives callbacks still under way up to `timeoutMs` to finish, then abandons them. */
  async drain(timeoutMs: number): Promise<void> {
    await Promise.race([Promise.allSettled(this.pending), sleep(timeoutMs, undefined, { ref: false })]);
    this.abandon.abort();
    await Promise.allSettled(this.pending);
  }

  private async post(sid: string, url: string, form: URLSearchParams): Promise<void> {
    for (let retry = 0; ; retry++) {
      let problem: string;
      try {
        const response = await fetch(url, {
          method: "POST",
          body: form,
          // A redirect is answered as a failure rather than followed to wherever it points.
          redirect: "manual",
          signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), this.abandon.signal]),
        });
        await response.body?.cancel();
        if (response.ok) return;
        problem = `HTTP ${response.status}`;
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error);
      }
      const delay = this.options.retryDelaysMs[retry];
      // Only the host is logged: a callback URL's path or query may carry the application's secret.
      const host = new URL(url).host;
      if (delay === undefined || this.abandon.signal.aborted) {
        this.logger.warn({ sid, host, problem }, "status callback failed; giving up on it");
        return;
      }
      this.logger.debug({ sid, host, problem }, "status callback failed; retrying");
      try {
        await sleep(delay, undefined, { signal: this.abandon.signal });
      } catch {
        return;
      }
    }
  }
}
