import type { AddressInfo } from "node:net";
import { type ParsedMail, simpleParser } from "mailparser";
import { SMTPServer, type SMTPServerOptions } from "smtp-server";

/** An SMTP reply the sink gives instead of accepting, e.g. { code: 451, message: "try later" }. */
export interface SmtpReply {
  code: number;
  message: string;
}

export interface ReceivedMessage {
  /** Envelope sender (MAIL FROM) and the recipients the sink accepted (RCPT TO). */
  from: string;
  to: string[];
  raw: string;
  parsed: ParsedMail;
  messageId: string | undefined;
}

/** How the sink answers. Each rule may change between messages (tests set `sink.rules`). */
export interface SinkRules {
  /** The answer to RCPT TO; undefined accepts the recipient. */
  recipient?(address: string): SmtpReply | undefined;
  /** The answer at the end of DATA; undefined accepts the message (and records it as received). */
  message?(message: ReceivedMessage): SmtpReply | undefined;
  /** Wait this long before answering DATA: a slow relay. */
  dataDelayMs?: number;
}

export interface SinkOptions {
  rules?: SinkRules;
  /** Implicit TLS (smtps) with smtp-server's built-in self-signed certificate. */
  secure?: boolean;
  /** Listen on this port (a restart); 0 picks a free one. */
  port?: number;
  /** Listen on this loopback address (an MX host of its own: 127.0.0.2, …); default 127.0.0.1. */
  host?: string;
  /** Announce SIZE with this limit in octets (as a real relay does); by default no SIZE. */
  size?: number;
  /** smtp-server options that replace the sink's own (TLS, AUTH policy, onAuth…). */
  server?: Partial<SMTPServerOptions>;
}

/**
 * A real SMTP server (smtp-server) standing in for the relay. It records every message it
 * accepted, parsed with mailparser, answers per recipient or per message as `rules` say, and can
 * be stopped (connections refused, open ones dropped) and restarted on the same port.
 */
export class SmtpSink {
  readonly received: ReceivedMessage[] = [];
  /** Every DATA it answered, accepted or not, in order. */
  readonly answered: Array<{ messageId: string | undefined; code: number; raw: string }> = [];
  /** Every command the sink received, by name (EHLO, AUTH, QUIT…), in order. */
  readonly commands: string[] = [];
  /** Messages whose DATA arrived and whose answer is still to come (see SinkRules.dataDelayMs). */
  unanswered = 0;
  rules: SinkRules;
  port: number;
  readonly host: string;
  private readonly secure: boolean;
  private readonly size: number | undefined;
  private readonly extra: Partial<SMTPServerOptions>;
  private server: SMTPServer | undefined;

  private constructor(options: SinkOptions) {
    this.rules = options.rules ?? {};
    this.secure = options.secure ?? false;
    this.size = options.size;
    this.extra = options.server ?? {};
    this.port = options.port ?? 0;
    this.host = options.host ?? "127.0.0.1";
  }

  static async start(options: SinkOptions = {}): Promise<SmtpSink> {
    const sink = new SmtpSink(options);
    await sink.listen();
    return sink;
  }

  /** The MAILROOM_SMTP_URL that reaches this sink. */
  get url(): string {
    return this.secure
      ? `smtps://127.0.0.1:${this.port}?tls.rejectUnauthorized=false`
      : `smtp://127.0.0.1:${this.port}`;
  }

  /** How many copies of the message with this Message-ID arrived. */
  count(messageId: string): number {
    return this.received.filter((message) => message.messageId === messageId).length;
  }

  /** The relay goes down: new connections are refused and open ones dropped. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const connection of server.connections) connection.close();
    await closed;
  }

  /** The relay comes back on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    await this.listen();
  }

  private async listen(): Promise<void> {
    const server = new SMTPServer(this.serverOptions());
    server.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      server.server.once("error", reject);
      server.listen(this.port, this.host, () => resolve());
    });
    this.port = (server.server.address() as AddressInfo).port;
    this.server = server;
  }

  private serverOptions(): SMTPServerOptions {
    return {
      secure: this.secure,
      size: this.size,
      // smtp-server logs each command at debug: that is how the sink sees them.
      logger: commandLogger((command) => this.commands.push(command)),
      authOptional: true,
      // Plain smtp:// stays plain: the built-in certificate would fail Mailroom's STARTTLS check.
      disabledCommands: this.secure ? ["AUTH"] : ["AUTH", "STARTTLS"],
      onRcptTo: (address, _session, callback) => {
        const reply = this.rules.recipient?.(address.address);
        callback(reply ? smtpError(reply) : null);
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => {
          void this.answerData(Buffer.concat(chunks).toString("utf8"), session.envelope).then(
            (reply) =>
              callback(reply ? smtpError(reply) : null, reply ? undefined : "queued by the test sink"),
            (error: Error) => callback(error),
          );
        });
      },
      ...this.extra,
    };
  }

  private async answerData(
    raw: string,
    envelope: { mailFrom: false | { address: string }; rcptTo: Array<{ address: string }> },
  ): Promise<SmtpReply | undefined> {
    this.unanswered++;
    const parsed = await simpleParser(raw);
    const message: ReceivedMessage = {
      from: envelope.mailFrom ? envelope.mailFrom.address : "",
      to: envelope.rcptTo.map((recipient) => recipient.address),
      raw,
      parsed,
      messageId: parsed.messageId,
    };
    // Unref'd: a slow answer still pending must not keep a finished test process alive.
    if (this.rules.dataDelayMs)
      await new Promise((resolve) => setTimeout(resolve, this.rules.dataDelayMs).unref());
    this.unanswered--;
    const reply = this.rules.message?.(message);
    this.answered.push({ messageId: message.messageId, code: reply?.code ?? 250, raw });
    if (!reply) this.received.push(message);
    return reply;
  }
}

/** A logger for smtp-server that only hears the names of the commands it received. */
function commandLogger(onCommand: (command: string) => void): SMTPServerOptions["logger"] {
  const ignore = () => {};
  const debug = (entry: { tnx?: string; command?: string }) => {
    if (entry?.tnx === "command" && entry.command) onCommand(entry.command);
  };
  return { trace: ignore, debug, info: ignore, warn: ignore, error: ignore, fatal: ignore } as never;
}

function smtpError(reply: SmtpReply): Error {
  return Object.assign(new Error(reply.message), { responseCode: reply.code });
}
