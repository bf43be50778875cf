import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { TransportConnections } from "../delivery/transports/transport.js";
import type { QueueStats } from "../store/types.js";
import { processMetrics } from "./process-metrics.js";

/** Where the scrape-time numbers come from; each may fail (the store down): its metrics then read NaN. */
export interface ScrapeSources {
  queueStats(): Promise<QueueStats>;
  /** The relay's connections; undefined without a relay (capture). */
  relayConnections(): Promise<TransportConnections | undefined>;
}

/** Which delivery a failed webhook attempt belongs to: a webhook's, or a message's StatusCallback. */
export type WebhookTarget = "webhook" | "status_callback";

/** The slice the webhook sender needs: one call per delivery attempt that did not get a 2xx answer. */
export interface WebhookMetrics {
  webhookAttemptFailed(target: WebhookTarget): void;
}

/** The slice the delivery steps need: one call per attempt recorded (the notify step). */
export interface DeliveryMetrics {
  /**
   * An attempt was recorded. `status` is the message's new state (queued: deferred for a retry),
   * `smtpCode` the reply that concluded the attempt (null: none, such as a connection failure or
   * capture), `acceptedAt` when the message was accepted.
   */
  attemptRecorded(status: "queued" | "sent" | "failed", smtpCode: number | null, acceptedAt: number): void;
}

export type StoreThreadName = "store" | "reader";

type HttpLabelName = "method" | "route" | "status_code";
/** A series bound to its labels once: prom-client then makes no closure per observation (observe(labels, v) makes one). */
type HttpSeries = Histogram.Internal<HttpLabelName>;

const SECONDS = 1000;

/**
 * Mailroom's Prometheus metrics, in a registry of this instance's own (tests run many servers in one
 * process; prom-client's global registry would mix them), exposed with the process's (processMetrics). Nothing here has a label per account or
 * recipient, so per-message work is a few increments on the main thread where the event already
 * happens. Gauges that describe the store or the relay thread are read once per scrape (render).
 */
export class MailroomMetrics implements WebhookMetrics, DeliveryMetrics {
  readonly registry = new Registry();
  /** This instance's metrics and the process's, as one scrape shows them (made once all are registered). */
  private readonly exposed: Registry;

  private readonly accepted = new Counter({
    name: "mailroom_messages_accepted_total",
    help: "Messages accepted (stored and queued) by this process.",
    registers: [this.registry],
  });
  private readonly sent = new Counter({
    name: "mailroom_messages_sent_total",
    help: "Messages that reached status sent in an attempt of this process.",
    registers: [this.registry],
  });
  private readonly failed = new Counter({
    name: "mailroom_messages_failed_total",
    help: "Messages that reached status failed in an attempt of this process.",
    registers: [this.registry],
  });
  private readonly deferred = new Counter({
    name: "mailroom_messages_deferred_total",
    help: "Attempts of this process that left their message queued for a retry (a message deferred twice counts twice).",
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: "mailroom_delivery_latency_seconds",
    help: "From acceptance to status sent, for messages sent by this process (retries included).",
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400],
    registers: [this.registry],
  });
  private readonly smtpReplies = new Counter({
    name: "mailroom_smtp_replies_total",
    help: "Delivery attempts by the class of the SMTP reply that concluded them (none: no reply, such as a connection failure, or capture).",
    labelNames: ["class"] as const,
    registers: [this.registry],
  });
  private readonly queueDepth = new Gauge({
    name: "mailroom_queue_depth",
    help: "Messages in the delivery queue (all processes sharing the store): waiting, retrying or being delivered. NaN if the store did not answer.",
    registers: [this.registry],
  });
  private readonly oldestDueAge = new Gauge({
    name: "mailroom_queue_oldest_due_age_seconds",
    help: "How long the most overdue message in the delivery queue has been due (0 when nothing is due). NaN if the store did not answer.",
    registers: [this.registry],
  });
  private readonly webhookBacklog = new Gauge({
    name: "mailroom_webhook_backlog",
    help: "Webhook deliveries and status callbacks still to make (rows in webhook_queue, all processes). NaN if the store did not answer.",
    registers: [this.registry],
  });
  private readonly webhookFailures = new Counter({
    name: "mailroom_webhook_failures_total",
    help: "Webhook and status callback delivery attempts of this process that did not get a 2xx answer (error, timeout, refused address, other status).",
    labelNames: ["target"] as const,
    registers: [this.registry],
  });
  private readonly relayOpen = new Gauge({
    name: "mailroom_relay_connections_open",
    help: "SMTP connections to the relay open now (opening, busy or idle); 0 without a relay.",
    registers: [this.registry],
  });
  private readonly relayOpened = new Counter({
    name: "mailroom_relay_connections_opened_total",
    help: "SMTP connections to the relay opened since the relay thread started.",
    registers: [this.registry],
  });
  private readonly httpDuration = new Histogram({
    name: "mailroom_http_request_duration_seconds",
    help: "HTTP requests by route pattern (not URL), method and status code.",
    labelNames: ["method", "route", "status_code"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly storeCalls = new Histogram({
    name: "mailroom_store_call_seconds",
    help: "Round trip of calls to the store threads (store; reader: SQLite's API reads), from the call to its answer on the main thread; timed per batch (the first call of each batch that crosses to the thread).",
    labelNames: ["thread"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  /** By route, method and status code. */
  private readonly httpSeries = new Map<string, Map<string, Map<number, HttpSeries>>>();
  /** mailroom_store_call_seconds by thread, bound once (a store call is timed per batch). */
  private readonly storeSeries: Record<StoreThreadName, Histogram.Internal<"thread">>;
  /** The latency's one series, bound once: observe(value) on the histogram makes a label set and a closure per call. */
  private readonly latencySeries = this.latency.labels();

  constructor() {
    this.exposed = Registry.merge([this.registry, processMetrics()]);
    // Every series exists from the start, so a rate over it is defined before the first event.
    for (const labels of Object.values(REPLY_CLASS)) this.smtpReplies.inc(labels, 0);
    for (const target of ["webhook", "status_callback"]) this.webhookFailures.inc({ target }, 0);
    // Binding makes no series: each appears at its first observation, as before.
    this.storeSeries = {
      store: this.storeCalls.labels(THREAD_LABELS.store),
      reader: this.storeCalls.labels(THREAD_LABELS.reader),
    };
  }

  messageAccepted(): void {
    this.accepted.inc();
  }

  attemptRecorded(status: "queued" | "sent" | "failed", smtpCode: number | null, acceptedAt: number): void {
    this.smtpReplies.inc(replyClass(smtpCode));
    if (status === "sent") {
      this.sent.inc();
      this.latencySeries.observe(Math.max(0, Date.now() - acceptedAt) / SECONDS);
    } else if (status === "failed") this.failed.inc();
    else this.deferred.inc();
  }

  webhookAttemptFailed(target: WebhookTarget): void {
    this.webhookFailures.inc({ target });
  }

  httpRequest(method: string, route: string, statusCode: number, ms: number): void {
    const series = this.httpSeries.get(route)?.get(method)?.get(statusCode);
    (series ?? this.addHttpSeries(method, route, statusCode)).observe(ms / SECONDS);
  }

  /** The series of a route, method and status: bound once, so a request allocates no label set. */
  private addHttpSeries(method: string, route: string, statusCode: number): HttpSeries {
    const series = this.httpDuration.labels({ method, route, status_code: statusCode });
    const byMethod = this.httpSeries.get(route) ?? new Map<string, Map<number, HttpSeries>>();
    const byStatus = byMethod.get(method) ?? new Map<number, HttpSeries>();
    byStatus.set(statusCode, series);
    byMethod.set(method, byStatus);
    this.httpSeries.set(route, byMethod);
    return series;
  }

  /** ThreadClientOptions.onLatency of the store threads. */
  storeCall(thread: StoreThreadName, ms: number): void {
    this.storeSeries[thread].observe(ms / SECONDS);
  }

  /**
   * The exposition text: reads the store's queue numbers and the relay's pool first (one call each),
   * so a scrape costs one store query however many gauges it feeds. A source that fails sets its
   * gauges to NaN rather than failing the scrape: the process metrics still tell what happened.
   */
  async render(sources: ScrapeSources): Promise<string> {
    const [queue, relay] = await Promise.allSettled([sources.queueStats(), sources.relayConnections()]);
    if (queue.status === "fulfilled") {
      const { depth, oldestDueAt, webhookBacklog } = queue.value;
      this.queueDepth.set(depth);
      this.oldestDueAge.set(oldestDueAt === null ? 0 : Math.max(0, Date.now() - oldestDueAt) / SECONDS);
      this.webhookBacklog.set(webhookBacklog);
    } else {
      this.queueDepth.set(Number.NaN);
      this.oldestDueAge.set(Number.NaN);
      this.webhookBacklog.set(Number.NaN);
    }
    const pool = relay.status === "fulfilled" ? relay.value : undefined;
    this.relayOpen.set(pool?.open ?? (relay.status === "fulfilled" ? 0 : Number.NaN));
    // A counter kept by the relay thread: its value is copied, not incremented, here.
    this.relayOpened.reset();
    if (pool) this.relayOpened.inc(pool.opened);
    return this.exposed.metrics();
  }

  get contentType(): string {
    return this.exposed.contentType;
  }
}

const THREAD_LABELS = { store: { thread: "store" }, reader: { thread: "reader" } } as const;

/** The label sets of mailroom_smtp_replies_total, made once: an attempt allocates none. */
const REPLY_CLASS = {
  "2xx": { class: "2xx" },
  "4xx": { class: "4xx" },
  "5xx": { class: "5xx" },
  none: { class: "none" },
} as const;

/** A concluding SMTP reply is 2xx, 4xx or 5xx (3xx, such as 354, never ends an attempt). */
function replyClass(code: number | null): (typeof REPLY_CLASS)[keyof typeof REPLY_CLASS] {
  if (code === null) return REPLY_CLASS.none;
  if (code >= 500) return REPLY_CLASS["5xx"];
  if (code >= 400) return REPLY_CLASS["4xx"];
  return REPLY_CLASS["2xx"];
}
