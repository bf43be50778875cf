import { randomBytes } from "node:crypto";
import { ApiError } from "../domain/errors.js";
import { containsControl, describeUnsafeCharacter } from "../domain/header-rules.js";
import { isSid, newSid } from "../domain/ids.js";
import { quoteInput } from "../domain/quote.js";
import type { SecretBox } from "../domain/secret-box.js";
import { parseEventTypeList } from "../events/type-list.js";
import { EVENT_TYPES } from "../events/types.js";
import { ALL_EVENTS } from "../model/webhook.js";
import type {
  MailStore,
  NewWebhookJob,
  WebhookDeliveryRow,
  WebhookPatch,
  WebhookRow,
} from "../store/types.js";
import { checkWebhookUrl } from "../webhooks/address-guard.js";
import type { WebhookNudge } from "../webhooks/worker.js";

/** The most events one replay by time range queues (docs/events.md); more is refused (14012). */
export const MAX_REPLAY_EVENTS = 10_000;

/** The longest webhook URL accepted: what browsers and proxies reliably carry. */
export const MAX_WEBHOOK_URL = 2048;

export interface WebhookServiceOptions {
  /** MAILROOM_MAX_WEBHOOKS. */
  maxWebhooks: number;
  /** MAILROOM_WEBHOOK_ALLOW_PRIVATE. */
  allowPrivate: boolean;
}

export interface WebhookInput {
  url?: string | undefined;
  events?: string | undefined;
  enabled?: string | boolean | undefined;
}

/** A webhook with the signing secret just issued for it: the only moment it is shown. */
export interface IssuedWebhook {
  webhook: WebhookRow;
  secret: string;
}

export interface ReplayResult {
  webhook: WebhookRow;
  queued: number;
  eventSid?: string;
  from?: number;
  before?: number;
  types?: readonly string[];
}

/**
 * The Webhooks resource's operations: checks of what a client sends, the signing secret (made here,
 * stored sealed), and replays. Who may act for the account is the HTTP edge's (assertMayAct).
 */
export class WebhookService {
  constructor(
    private readonly store: MailStore,
    private readonly secrets: SecretBox,
    private readonly options: WebhookServiceOptions,
    /** The webhook sender, woken when a replay has queued jobs that are due now. */
    private readonly sender?: WebhookNudge,
  ) {}

  async create(accountSid: string, input: WebhookInput): Promise<IssuedWebhook> {
    if (input.url === undefined) throw new ApiError("WebhookUrlMissing", "Url can not be null.");
    const url = await this.checkUrl(input.url);
    const events = parseEventTypes(input.events ?? "");
    const enabled = parseEnabled(input.enabled ?? true);
    const now = Date.now();
    const secret = newWebhookSecret();
    const webhook: WebhookRow = {
      sid: newSid("WH", now),
      account_sid: accountSid,
      url,
      events,
      enabled: enabled ? 1 : 0,
      secret_sealed: this.secrets.seal(secret),
      failing_since: null,
      date_created: now,
      date_updated: now,
    };
    if (!(await this.store.insertWebhook(webhook, this.options.maxWebhooks))) {
      throw new ApiError(
        "WebhookLimitReached",
        `Account ${accountSid} already has ${this.options.maxWebhooks} webhooks, the most MAILROOM_MAX_WEBHOOKS allows; delete one, or give one webhook several event types.`,
      );
    }
    return { webhook, secret };
  }

  async find(accountSid: string, sid: string): Promise<WebhookRow> {
    const webhook = isSid(sid, "WH") ? await this.store.findWebhook(accountSid, sid) : undefined;
    if (!webhook)
      throw new ApiError("WebhookNotFound", `No webhook ${quoteInput(sid)} in account ${accountSid}.`);
    return webhook;
  }

  /** Changes what is given; Enabled=true on a disabled webhook also restarts its failure clock. */
  async update(accountSid: string, sid: string, input: WebhookInput): Promise<WebhookRow> {
    const current = await this.find(accountSid, sid);
    const patch: WebhookPatch = {};
    if (input.url !== undefined) patch.url = await this.checkUrl(input.url);
    if (input.events !== undefined) patch.events = parseEventTypes(input.events);
    const enabled = input.enabled === undefined ? undefined : parseEnabled(input.enabled);
    if (enabled === false) patch.enabled = 0;
    if (Object.keys(patch).length === 0 && enabled === undefined) return current;
    patch.date_updated = Date.now();
    const updated = await this.store.updateWebhook(accountSid, current.sid, patch, enabled === true);
    if (!updated)
      throw new ApiError("WebhookNotFound", `No webhook ${quoteInput(sid)} in account ${accountSid}.`);
    return updated;
  }

  /** A new signing secret, in force at once (the old one no longer signs anything). */
  async rotateSecret(accountSid: string, sid: string): Promise<IssuedWebhook> {
    const current = await this.find(accountSid, sid);
    const secret = newWebhookSecret();
    const patch = { secret_sealed: this.secrets.seal(secret), date_updated: Date.now() };
    const webhook = await this.store.updateWebhook(accountSid, current.sid, patch, false);
    if (!webhook)
      throw new ApiError("WebhookNotFound", `No webhook ${quoteInput(sid)} in account ${accountSid}.`);
    return { webhook, secret };
  }

  async delete(accountSid: string, sid: string): Promise<void> {
    const deleted = isSid(sid, "WH") && (await this.store.deleteWebhook(accountSid, sid));
    if (!deleted)
      throw new ApiError("WebhookNotFound", `No webhook ${quoteInput(sid)} in account ${accountSid}.`);
  }

  async findDelivery(accountSid: string, webhookSid: string, sid: string): Promise<WebhookDeliveryRow> {
    const webhook = await this.find(accountSid, webhookSid);
    const delivery = isSid(sid, "DL")
      ? await this.store.findWebhookDelivery(accountSid, webhook.sid, sid)
      : undefined;
    if (!delivery) {
      throw new ApiError(
        "WebhookDeliveryNotFound",
        `No delivery ${quoteInput(sid)} of webhook ${webhook.sid} in account ${accountSid}.`,
      );
    }
    return delivery;
  }

  /** Queues that delivery's event to its webhook again, due now, as a fresh job (RP…). */
  async replayDelivery(accountSid: string, webhookSid: string, deliverySid: string): Promise<ReplayResult> {
    const delivery = await this.findDelivery(accountSid, webhookSid, deliverySid);
    const webhook = this.assertEnabled(await this.find(accountSid, webhookSid));
    const now = Date.now();
    const job: NewWebhookJob = {
      sid: newSid("RP", now),
      account_sid: accountSid,
      webhook_sid: webhook.sid,
      event_sid: delivery.event_sid,
      message_sid: delivery.message_sid,
      callback_url: null,
      attempts: 0,
      created_at: now,
      due_at: now,
      lease_owner: null,
      lease_expires_at: null,
    };
    await this.store.enqueueWebhookJobs([job]);
    this.sender?.nudge();
    return { webhook, queued: 1, eventSid: delivery.event_sid };
  }

  /**
   * Queues every event of the account created in [from, before) that the webhook subscribes to (and
   * of `types`, when given), oldest first; at most MAX_REPLAY_EVENTS, else nothing and an error.
   */
  async replayRange(
    accountSid: string,
    webhookSid: string,
    range: { from: number; before: number; types: readonly string[] | undefined },
  ): Promise<ReplayResult> {
    const webhook = this.assertEnabled(await this.find(accountSid, webhookSid));
    const subscribed: readonly string[] = webhook.events === null ? EVENT_TYPES : webhook.events.split(",");
    const types = subscribed.filter((type) => range.types === undefined || range.types.includes(type));
    const result = await this.store.replayEventRange(
      {
        accountSid,
        webhookSid: webhook.sid,
        types,
        from: range.from,
        before: range.before,
        max: MAX_REPLAY_EVENTS,
      },
      Date.now(),
    );
    if ("tooMany" in result) {
      throw new ApiError(
        "ReplayTooLarge",
        `More than ${MAX_REPLAY_EVENTS} events match; nothing was queued. Replay a shorter time range (StartTime, EndTime) or fewer types (Type), in several calls.`,
      );
    }
    if (result.queued > 0) this.sender?.nudge();
    return { webhook, queued: result.queued, from: range.from, before: range.before, types };
  }

  private assertEnabled(webhook: WebhookRow): WebhookRow {
    if (webhook.enabled !== 1) {
      throw new ApiError(
        "WebhookNotEnabled",
        `Webhook ${webhook.sid} is disabled, so a replay would not be delivered; enable it first (Enabled=true).`,
      );
    }
    return webhook;
  }

  private async checkUrl(url: string): Promise<string> {
    if (url.length > MAX_WEBHOOK_URL) {
      throw new ApiError(
        "WebhookUrlInvalid",
        `Url is ${url.length} characters long; at most ${MAX_WEBHOOK_URL}.`,
      );
    }
    // URL parsers drop surrounding spaces and control characters silently; the URL stored and shown
    // must be the one that is called.
    const unsafe = describeUnsafeCharacter(url);
    if (url !== url.trim() || containsControl(url) || unsafe !== undefined) {
      throw new ApiError(
        "WebhookUrlInvalid",
        `Url ${quoteInput(url)} contains ${unsafe ?? "spaces or control characters"}; send the URL alone, percent-encoded.`,
      );
    }
    await checkWebhookUrl(url, { allowPrivate: this.options.allowPrivate });
    return url;
  }
}

/** `whsec_` + base64 of 24 random bytes: the Standard Webhooks form, which its libraries take as is. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

/**
 * The stored form of `Events`: null for every type (absent, empty or *), else the types named, once
 * each, in EVENT_TYPES order. An unknown type is refused by name.
 */
export function parseEventTypes(text: string): string | null {
  if (text.trim() === ALL_EVENTS) return null;
  const types = parseEventTypeList(text, "Events", "InvalidEventType");
  return types.length === 0 ? null : types.join(",");
}

function parseEnabled(value: string | boolean): boolean {
  if (typeof value === "boolean") return value;
  const lower = value.toLowerCase();
  if (lower === "true") return true;
  if (lower === "false") return false;
  throw new ApiError("InvalidWebhookField", `Enabled must be true or false, got ${quoteInput(value)}.`);
}
