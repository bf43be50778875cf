import pg from "pg";

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;

/**
 * A LISTEN on one channel that survives its connection: when the connection drops (database restart,
 * failover, an idle connection killed by a proxy) it reconnects with backoff and re-issues LISTEN.
 * Notifications sent while it was disconnected are lost, so after every reconnect it calls `onNotify`
 * once: a spurious wake-up costs one empty claim, a missed one would leave work waiting for the poll.
 */
export class NotificationListener {
  private client: pg.Client | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MIN_MS;
  private stopped = false;

  constructor(
    private readonly config: pg.ClientConfig,
    /** An SQL expression naming the channel, evaluated on the listening connection itself. */
    private readonly channelSql: string,
    /** The payload of the notifications this process sends itself, which it ignores. */
    private readonly ownPayload: string,
    private readonly onNotify: () => void,
  ) {}

  /** Resolves after the first attempt, connected or not: until it connects, the worker's poll covers. */
  start(): Promise<void> {
    return this.connect(false);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async connect(afterLoss: boolean): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client(this.config);
    this.client = client;
    client.on("error", () => this.lost(client));
    client.on("end", () => this.lost(client));
    let channel: string | undefined;
    client.on("notification", (message) => {
      if (message.channel === channel && message.payload !== this.ownPayload) this.onNotify();
    });
    try {
      await client.connect();
      const { rows } = await client.query<{ channel: string }>(`select ${this.channelSql} as channel`);
      channel = rows[0]?.channel;
      await client.query(`listen "${channel}"`);
    } catch {
      this.lost(client);
      return;
    }
    if (this.client !== client) return; // stopped or lost while connecting
    this.retryMs = RETRY_MIN_MS;
    if (afterLoss) this.onNotify();
  }

  /** Called once per dead client (error and end may both fire): drop it and schedule a reconnect. */
  private lost(client: pg.Client): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    client.end().catch(() => {});
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => void this.connect(true), delay);
    // A pending reconnect alone must not keep a stopping process alive.
    this.retryTimer.unref();
  }
}
