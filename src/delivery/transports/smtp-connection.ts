import net from "node:net";
import tls from "node:tls";

/**
 * One SMTP client connection to a relay: connect (plain, or TLS from the first byte), greeting,
 * EHLO (HELO as a fallback), STARTTLS, AUTH PLAIN/LOGIN, then one mail transaction at a time,
 * pipelined when the relay offers PIPELINING. It logs nothing and knows nothing about Mailroom's
 * reports: failures are SmtpErrors shaped like nodemailer's (code, response, responseCode, command,
 * permanent), so the transport sorts them exactly as it sorted nodemailer's.
 *
 * When the relay announces SIZE (RFC 1870), MAIL FROM declares each message's size, and a message
 * over the relay's limit fails before anything of it is written: the connection carries on.
 *
 * Per message it costs two socket writes (the envelope with DATA, then the message with its final
 * dot), or one when the next transaction waits: its envelope goes out in the same write as this
 * message's data (RFC 2920 lets message content start a group), so a busy connection costs one
 * write, one read and one round trip per message. No streams, timers or listeners per message: one
 * 'data' handler per connection parses replies and hands them, in order, to the one reader that
 * waits for them.
 */

export interface SmtpConnectionOptions {
  host: string;
  port: number;
  /** TLS from the first byte (smtps). */
  secure: boolean;
  /** For a plain connection: STARTTLS when offered, or insist on it. */
  startTls: "opportunistic" | "required";
  auth: { user: string; pass: string } | undefined;
  /** Send `auth` over a connection without TLS too (?allowInsecureAuth=true); otherwise refuse to. */
  allowInsecureAuth: boolean;
  /** Extra options for tls.connect (from the URL's tls.* query options). */
  tls: tls.ConnectionOptions;
  /** The name sent with EHLO/HELO. */
  name: string;
  /** Bounds TCP connect (with DNS), the TLS handshake of smtps, the greeting and a STARTTLS handshake. */
  connectTimeoutMs: number;
  /** The longest silence while waiting for a reply; an idle connection is closed after it. */
  socketTimeoutMs: number;
}

export interface SmtpEnvelope {
  from: string;
  to: readonly string[];
}

/** One mail transaction: who it goes to and the message (its MIME). */
export interface SmtpTransaction {
  envelope: SmtpEnvelope;
  raw: string;
}

/** A recipient the relay refused at RCPT TO. */
export interface RecipientRefusal {
  recipient: string;
  response: string;
  responseCode: number;
  /** 5xx, except 503 (a session problem, not a verdict on the recipient). */
  permanent: boolean;
}

export interface SmtpSendResult {
  /** The relay's reply to the end of the message, e.g. "250 2.0.0 Ok: queued as 1234". */
  response: string;
  /** Recipients refused at RCPT TO; the message went to the others. */
  rejected: RecipientRefusal[];
}

export type SmtpErrorCode =
  | "ECONNECTION"
  | "ESOCKET"
  | "ETIMEDOUT"
  | "EDNS"
  | "ETLS"
  | "EAUTH"
  | "EINSECUREAUTH"
  | "EPROTOCOL"
  | "EENVELOPE"
  | "EMESSAGE";

export type SmtpTimeout = "CONNECT_TIMEOUT" | "GREETING_TIMEOUT" | "UPGRADE_TIMEOUT" | "SOCKET_TIMEOUT";

/** Why a send or a connection failed, with the relay's reply when there was one. */
export class SmtpError extends Error {
  readonly code: SmtpErrorCode;
  /** The system error code behind it, e.g. ECONNREFUSED. */
  originalCode?: string;
  /** The relay's whole reply (lines joined with "\n"). */
  response?: string;
  responseCode?: number;
  /** The step that failed: CONN, EHLO, HELO, STARTTLS, AUTH PLAIN, MAIL FROM, RCPT TO, DATA. */
  command?: string;
  timeoutType?: SmtpTimeout;
  /** 5xx except 503; set with responseCode. */
  permanent?: boolean;
  /**
   * The connection failed before it was ready for mail (connect, greeting, EHLO, STARTTLS, AUTH):
   * nothing of any message went out, so another host may be tried at once (direct-to-MX).
   */
  setup?: boolean;
  /** Every recipient was refused: each one's refusal. */
  rejectedErrors?: RecipientRefusal[];
  /** The message is over the relay's SIZE limit (both in octets); nothing of it was written. */
  oversize?: { size: number; limit: number };

  constructor(message: string, code: SmtpErrorCode, command: string, reply?: Reply) {
    super(reply ? `${message}: ${reply.text}` : message);
    this.name = "SmtpError";
    this.code = code;
    this.command = command;
    if (reply) {
      this.response = reply.text;
      if (reply.code > 0) {
        this.responseCode = reply.code;
        this.permanent = isPermanent(reply.code);
      }
    }
  }
}

/** One reply: its code (0 when the line does not start with three digits) and its whole text. */
interface Reply {
  code: number;
  text: string;
}

/** RFC 5321: 5yz is permanent. 503 (bad sequence of commands) is a session problem (as nodemailer has it). */
export function isPermanent(code: number): boolean {
  return code >= 500 && code < 600 && code !== 503;
}

// Bare CR or LF (made CRLF), a dot after any line break, or a dot that starts the message.
const LINE_FIXES = /\r\n\.|\r(?!\n)\.?|(?<!\r)\n\.?|^\./g;

function fixLine(match: string): string {
  if (match.charCodeAt(match.length - 1) !== 46) return "\r\n";
  return match.length === 1 ? ".." : "\r\n..";
}

/**
 * The DATA payload for a message: line breaks made CRLF, every line that starts with "." given a
 * second one, and the terminating "." line. One regex pass; a CRLF message without leading dots
 * comes back unchanged before the terminator.
 */
export function dataPayload(raw: string): string {
  const data = raw.replace(LINE_FIXES, fixLine);
  return data.endsWith("\r\n") ? `${data}.\r\n` : `${data}\r\n.\r\n`;
}

/**
 * The size SIZE= declares for a message (`payload` is its dataPayload, `payloadOctets` its UTF-8
 * length), as RFC 1870 defines it and relays count it: the octets sent after 354 (CRLF line ends,
 * the last line's included) without the doubled dots and the final ".\r\n". Native scans only: the
 * UTF-8 length, and line-initial dots when the payload is not simply the message and its terminator.
 */
export function messageSize(
  raw: string,
  payload: string,
  payloadOctets = Buffer.byteLength(payload),
): number {
  const octets = payloadOctets - 3;
  // Every fix dataPayload makes adds characters: none made (the usual CRLF message), no dot doubled.
  if (payload.length === raw.length + 3) return octets;
  // Each payload line that starts with "." carries one doubled dot, except the terminator.
  let doubled = payload.charCodeAt(0) === 46 ? 0 : -1;
  for (let at = payload.indexOf("\r\n."); at >= 0; at = payload.indexOf("\r\n.", at + 3)) doubled++;
  return octets - doubled;
}

const MAX_REPLY_CHARS = 1024 * 1024;
const NON_ASCII = /[\u0080-\uffff]/;
const ADDRESS_BREAKERS = /[\r\n<>]/;
/** How long a connection that said QUIT may take to close before it is destroyed. */
const QUIT_GRACE_MS = 2000;

type State = "connecting" | "idle" | "busy" | "closed";

export interface SmtpConnectionEvents {
  /** The connection can no longer be used (failed, closed by the relay, quit or destroyed). Once. */
  gone(connection: SmtpConnection): void;
  /** Its socket has closed: nothing of it is left. Once, after gone. */
  closed(connection: SmtpConnection): void;
}

export class SmtpConnection {
  /** What the relay announced in its EHLO reply (after STARTTLS: in the one after it). */
  readonly extensions = {
    pipelining: false,
    startTls: false,
    eightBitMime: false,
    smtpUtf8: false,
    /** SIZE: MAIL FROM declares the message's size. */
    size: false,
    /** SIZE's limit in octets; 0 when it gave none or did not announce SIZE. */
    maxSize: 0,
    auth: [] as string[],
  };
  /** Secured with TLS (smtps, or after STARTTLS). */
  secure = false;
  /** Transactions begun on this connection, the current one included. */
  sends = 0;
  /** A transaction ended before its final reply: RSET is due before the next one. */
  needsReset = false;
  /** The current transaction wrote its message (so it must not be retried elsewhere). */
  contentWritten = false;

  /** The next transaction, its envelope already written behind the current message's data. */
  private written: SmtpTransaction | undefined;
  /** Its DATA payload, made when its envelope was (for SIZE=). */
  private writtenPayload = "";
  private state: State = "connecting";
  private socket: net.Socket;
  private handshaking = false;
  private buffer = "";
  private partial = "";
  private readonly replies: Reply[] = [];
  private resolveReply: ((reply: Reply) => void) | undefined;
  private rejectReply: ((error: SmtpError) => void) | undefined;
  private rejectUpgrade: ((error: SmtpError) => void) | undefined;
  private failure: SmtpError | undefined;
  private setupTimer: NodeJS.Timeout | undefined;
  private readonly deadline: number;
  private readonly ready: Promise<void>;

  private readonly onData = (chunk: Buffer) => this.receive(chunk);
  private readonly onError = (error: Error) => this.shut(this.socketError(error), false);
  private readonly onClose = () => {
    this.shut(new SmtpError("Connection closed unexpectedly", "ECONNECTION", "CONN"), false);
    this.events.closed(this);
  };
  private readonly onTimeout = () => this.timedOut();

  constructor(
    private readonly options: SmtpConnectionOptions,
    private readonly events: SmtpConnectionEvents,
  ) {
    this.deadline = Date.now() + options.connectTimeoutMs;
    this.startSetupTimer("CONNECT_TIMEOUT", "Connection timeout");
    const connected = () => {
      // The greeting (and for smtps the handshake) must still come within the connect timeout.
      this.startSetupTimer("GREETING_TIMEOUT", "Greeting never received");
      this.socket.setTimeout(options.socketTimeoutMs);
    };
    if (options.secure) {
      const socket = tls.connect(
        { host: options.host, port: options.port, servername: serverName(options.host), ...options.tls },
        () => {
          this.handshaking = false;
          this.secure = true;
        },
      );
      socket.once("connect", () => {
        this.handshaking = true;
        connected();
      });
      this.socket = socket;
    } else {
      this.socket = net.connect({ host: options.host, port: options.port }, connected);
    }
    this.attach(this.socket);
    this.ready = this.setup();
    // opened() reports a failure; this only keeps one nobody asked for from being unhandled.
    this.ready.catch(ignore);
  }

  /** Resolves once the session is ready for mail (greeting, EHLO, STARTTLS and AUTH done). */
  opened(): Promise<void> {
    return this.ready;
  }

  get usable(): boolean {
    return this.state === "idle" || this.state === "busy";
  }

  /**
   * One mail transaction. Resolves with the final reply and the recipients refused at RCPT TO;
   * rejects with an SmtpError for a reply that ends the transaction or a failed connection.
   * `following` offers the transaction that will come next on this connection: when the relay
   * pipelines, its envelope is written together with this message's data, and its own send then
   * only reads the replies. Whatever happens to this transaction, the next one is sent next.
   */
  async send(
    transaction: SmtpTransaction,
    following?: () => SmtpTransaction | undefined,
  ): Promise<SmtpSendResult> {
    this.state = "busy";
    this.sends++;
    this.contentWritten = false;
    const prewritten = this.written === transaction;
    // Made before MAIL FROM, which declares its size.
    const payload = prewritten ? this.writtenPayload : dataPayload(transaction.raw);
    this.written = undefined;
    this.writtenPayload = "";
    const { to } = transaction.envelope;
    const mailFrom = prewritten ? "" : this.mailCommand(transaction, payload);

    this.needsReset = true;
    let rejected: RecipientRefusal[] | undefined;
    let accepted = 0;
    let dataReply: Reply;
    if (this.extensions.pipelining) {
      // RFC 2920: the whole envelope and DATA in one write, then the replies in order.
      if (!prewritten) this.socket.write(pipelinedEnvelope(mailFrom, to));
      const mail = await this.read();
      const mailError = isPositive(mail) ? undefined : mailRefused(mail);
      if (mailError && this.endsSession(mail)) throw mailError;
      for (const address of to) {
        const reply = await this.read();
        if (isPositive(reply)) accepted++;
        else if (rejected) rejected.push(refusal(address, reply));
        else rejected = [refusal(address, reply)];
        if (this.endsSession(reply)) throw mailError ?? sessionEnded(reply);
      }
      dataReply = await this.read();
      const envelopeError = mailError ?? (accepted === 0 ? allRefused(rejected ?? []) : undefined);
      if (envelopeError) {
        if (dataReply.code >= 300 && dataReply.code < 400) {
          // DATA went ahead although nothing may follow it. After a refused sender the relay cannot
          // be trusted; without recipients, an empty message ends the transaction it began.
          if (mailError) this.discard();
          else this.endsSession(await this.command("."));
        } else this.endsSession(dataReply);
        throw envelopeError;
      }
    } else {
      const mail = await this.command(mailFrom);
      if (!isPositive(mail)) {
        this.endsSession(mail);
        throw mailRefused(mail);
      }
      for (const address of to) {
        const reply = await this.command(`RCPT TO:<${address}>`);
        if (isPositive(reply)) accepted++;
        else if (rejected) rejected.push(refusal(address, reply));
        else rejected = [refusal(address, reply)];
        if (this.endsSession(reply)) throw sessionEnded(reply);
      }
      if (accepted === 0) throw allRefused(rejected ?? []);
      dataReply = await this.command("DATA");
    }
    // 354, though some relays say 250.
    if (dataReply.code < 200 || dataReply.code >= 400) {
      this.endsSession(dataReply);
      throw new SmtpError("Data command failed", "EENVELOPE", "DATA", dataReply);
    }

    this.contentWritten = true;
    let batch = payload;
    const next = this.extensions.pipelining ? following?.() : undefined;
    if (next) {
      try {
        const nextPayload = dataPayload(next.raw);
        batch += pipelinedEnvelope(this.mailCommand(next, nextPayload), next.envelope.to);
        this.written = next;
        this.writtenPayload = nextPayload;
      } catch {
        // An envelope that cannot be sent (or a message over the SIZE limit): its own send reports
        // why, without writing anything.
      }
    }
    this.socket.write(batch);
    const final = await this.read();
    this.needsReset = false;
    if (!isPositive(final)) {
      this.endsSession(final);
      throw new SmtpError("Message failed", "EMESSAGE", "DATA", final);
    }
    return { response: final.text, rejected: rejected ?? NO_REFUSALS };
  }

  /**
   * The MAIL FROM command for a transaction, after checking its addresses can be sent at all and
   * its message (`payload`) is within the relay's SIZE limit.
   */
  private mailCommand({ envelope, raw }: SmtpTransaction, payload: string): string {
    const { from, to } = envelope;
    if (to.length === 0) throw new SmtpError("No recipients defined", "EENVELOPE", "API");
    if (ADDRESS_BREAKERS.test(from)) {
      throw new SmtpError(`Invalid sender ${JSON.stringify(from)}`, "EENVELOPE", "API");
    }
    let international = NON_ASCII.test(from);
    for (const address of to) {
      if (!address || ADDRESS_BREAKERS.test(address)) {
        throw new SmtpError(`Invalid recipient ${JSON.stringify(address)}`, "EENVELOPE", "API");
      }
      if (!international && NON_ASCII.test(address)) international = true;
    }
    let mailFrom = `MAIL FROM:<${from}>`;
    if (international && this.extensions.smtpUtf8) mailFrom += " SMTPUTF8";
    const { eightBitMime, size } = this.extensions;
    // The payload's UTF-8 length, counted once: longer than the payload exactly when the message is
    // not ASCII (what 8BITMIME declares; the payload only adds ASCII to it), and SIZE's octets. A
    // regular expression looking for non-ASCII cost about four times the count (1 KB message).
    const octets = eightBitMime || size ? Buffer.byteLength(payload) : 0;
    if (eightBitMime && octets !== payload.length) mailFrom += " BODY=8BITMIME";
    if (size) mailFrom += ` SIZE=${this.sizeWithinLimit(raw, payload, octets)}`;
    return mailFrom;
  }

  /** The message's size; over the relay's limit the send fails here, before a byte of it goes out. */
  private sizeWithinLimit(raw: string, payload: string, payloadOctets: number): number {
    const size = messageSize(raw, payload, payloadOctets);
    const limit = this.extensions.maxSize;
    if (limit > 0 && size > limit) throw overSizeLimit(size, limit);
    return size;
  }

  /** RSET after a transaction that ended early. Never throws: a failed RSET discards the connection. */
  async reset(): Promise<void> {
    try {
      const reply = await this.command("RSET");
      if (isPositive(reply)) this.needsReset = false;
      else this.discard();
    } catch {
      // The connection failed, and is gone already.
    }
  }

  /** Back in the pool, waiting for the next transaction. */
  park(): void {
    if (this.state === "busy") this.state = "idle";
  }

  /** Says QUIT and lets the connection go (a protocol problem, or idle for too long). */
  discard(): void {
    this.shut(new SmtpError("Connection closed", "ECONNECTION", "CONN"), true);
  }

  /** Closes the socket at once; what waits on the connection fails with `error`. */
  destroy(error: SmtpError): void {
    this.shut(error, false);
  }

  /**
   * Ends the connection once: QUIT first when `polite` and the socket still writes. The pool hears
   * `gone` at once, `closed` when the socket has closed.
   */
  private shut(error: SmtpError, polite: boolean): void {
    this.clearSetupTimer();
    if (this.state === "closed") return;
    this.state = "closed";
    this.failure = error;
    const socket = this.socket;
    socket.setTimeout(0);
    if (polite && socket.writable && !this.handshaking) {
      socket.end("QUIT\r\n");
      const timer = setTimeout(() => socket.destroy(), QUIT_GRACE_MS);
      timer.unref();
      socket.once("close", () => clearTimeout(timer));
    } else {
      socket.destroy();
    }
    this.events.gone(this);
    const reject = this.rejectReply;
    if (reject) {
      this.resolveReply = this.rejectReply = undefined;
      reject(error);
    }
    const rejectUpgrade = this.rejectUpgrade;
    if (rejectUpgrade) {
      this.rejectUpgrade = undefined;
      rejectUpgrade(error);
    }
  }

  /** A 421 (the relay is closing), or a reply that is no reply at all: the session is over. */
  private endsSession(reply: Reply): boolean {
    if (reply.code === 421)
      this.destroy(new SmtpError("Server closed the connection", "ECONNECTION", "CONN", reply));
    else if (reply.code < 200) this.discard();
    else return false;
    return true;
  }

  private async setup(): Promise<void> {
    try {
      const greeting = await this.read();
      this.clearSetupTimer();
      if (greeting.code !== 220) {
        throw new SmtpError(`Invalid greeting. response=${greeting.text}`, "EPROTOCOL", "CONN", greeting);
      }
      let allowsAuth = await this.hello();
      if (!this.secure && (this.extensions.startTls || this.options.startTls === "required")) {
        const reply = await this.command("STARTTLS");
        if (isPositive(reply)) {
          await this.upgrade();
          const ehlo = await this.command(`EHLO ${this.options.name}`);
          if (!isPositive(ehlo)) {
            throw new SmtpError(`Invalid EHLO. response=${ehlo.text}`, "EPROTOCOL", "EHLO", ehlo);
          }
          this.readExtensions(ehlo.text);
          allowsAuth = this.extensions.auth.length > 0;
        } else if (this.options.startTls === "required") {
          throw new SmtpError("Error upgrading connection with STARTTLS", "ETLS", "STARTTLS", reply);
        } else {
          // Plain text goes on, but credentials are not sent over a connection that failed to encrypt.
          allowsAuth = false;
        }
      }
      if (this.options.auth && !this.secure && !this.options.allowInsecureAuth) {
        // The relay offered no TLS (or it failed, opportunistic): the password would travel in clear text.
        throw new SmtpError(
          "Refusing to send credentials over a connection without TLS",
          "EINSECUREAUTH",
          "AUTH",
        );
      }
      if (this.options.auth && allowsAuth) await this.login(this.options.auth);
      if (this.state === "connecting") this.state = "idle";
    } catch (error) {
      const failure =
        error instanceof SmtpError ? error : new SmtpError(String(error), "ECONNECTION", "CONN");
      failure.setup = true;
      this.shut(failure, true);
      throw failure;
    }
  }

  /** EHLO, or HELO when EHLO is refused. Says whether AUTH may be tried. */
  private async hello(): Promise<boolean> {
    const ehlo = await this.command(`EHLO ${this.options.name}`);
    if (ehlo.code === 421) {
      throw new SmtpError(`Server terminates connection. response=${ehlo.text}`, "ECONNECTION", "EHLO", ehlo);
    }
    if (isPositive(ehlo)) {
      this.readExtensions(ehlo.text);
      return this.extensions.auth.length > 0;
    }
    if (this.options.startTls === "required" && !this.secure) {
      throw new SmtpError(
        `EHLO failed but HELO does not support required STARTTLS. response=${ehlo.text}`,
        "ECONNECTION",
        "EHLO",
        ehlo,
      );
    }
    const helo = await this.command(`HELO ${this.options.name}`);
    if (!isPositive(helo)) {
      throw new SmtpError(`Invalid HELO. response=${helo.text}`, "EPROTOCOL", "HELO", helo);
    }
    // HELO tells nothing about AUTH: try it anyway.
    return true;
  }

  private readExtensions(text: string): void {
    const x = this.extensions;
    x.pipelining = x.startTls = x.eightBitMime = x.smtpUtf8 = x.size = false;
    x.maxSize = 0;
    x.auth = [];
    const lines = text.split("\n");
    for (let i = 1; i < lines.length; i++) {
      const words = (lines[i] as string)
        .slice(4)
        .trim()
        .toUpperCase()
        .split(/[\s=]+/);
      switch (words[0]) {
        case "PIPELINING":
          x.pipelining = true;
          break;
        case "STARTTLS":
          x.startTls = true;
          break;
        case "8BITMIME":
          x.eightBitMime = true;
          break;
        case "SMTPUTF8":
          x.smtpUtf8 = true;
          break;
        case "SIZE":
          x.size = true;
          x.maxSize = Number(words[1]) || 0;
          break;
        case "AUTH":
          for (const mechanism of words.slice(1)) {
            if (mechanism && !x.auth.includes(mechanism)) x.auth.push(mechanism);
          }
          break;
      }
    }
  }

  /** AUTH PLAIN when offered (or nothing was said about it), else AUTH LOGIN. */
  private async login(auth: { user: string; pass: string }): Promise<void> {
    const offered = this.extensions.auth;
    const method = offered.includes("PLAIN") || !offered.includes("LOGIN") ? "PLAIN" : "LOGIN";
    const command = `AUTH ${method}`;
    let reply: Reply;
    if (method === "PLAIN") {
      reply = await this.command(`AUTH PLAIN ${base64(`\u0000${auth.user}\u0000${auth.pass}`)}`);
    } else {
      reply = await this.command("AUTH LOGIN");
      if (reply.code !== 334) {
        throw new SmtpError(
          'Invalid login sequence while waiting for "334 VXNlcm5hbWU6"',
          "EAUTH",
          command,
          reply,
        );
      }
      reply = await this.command(base64(auth.user));
      if (reply.code !== 334) {
        throw new SmtpError(
          'Invalid login sequence while waiting for "334 UGFzc3dvcmQ6"',
          "EAUTH",
          command,
          reply,
        );
      }
      reply = await this.command(base64(auth.pass));
    }
    // A relay that asks for more gets an empty answer, once (as nodemailer does).
    if (reply.code === 334) reply = await this.command("");
    if (!isPositive(reply)) throw new SmtpError("Invalid login", "EAUTH", command, reply);
  }

  private command(line: string): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.read();
  }

  /** TLS over the plain connection, after the relay's 220 to STARTTLS. */
  private upgrade(): Promise<void> {
    const plain = this.socket;
    // RFC 3207: nothing received in plain text before the handshake may be used after it.
    this.buffer = "";
    this.partial = "";
    this.replies.length = 0;
    plain.removeListener("data", this.onData);
    plain.removeListener("error", this.onError);
    plain.removeListener("close", this.onClose);
    plain.removeListener("timeout", this.onTimeout);
    plain.setTimeout(0);
    plain.on("error", ignore);
    this.startSetupTimer("UPGRADE_TIMEOUT", "TLS handshake timed out");
    this.handshaking = true;
    return new Promise<void>((resolve, reject) => {
      // A failed handshake reaches onError, and shut() rejects this.
      this.rejectUpgrade = reject;
      const options = { socket: plain, servername: serverName(this.options.host), ...this.options.tls };
      const secured = tls.connect(options, () => {
        this.handshaking = false;
        this.secure = true;
        this.rejectUpgrade = undefined;
        this.clearSetupTimer();
        resolve();
      });
      this.socket = secured;
      this.attach(secured);
      secured.setTimeout(this.options.socketTimeoutMs);
    });
  }

  private attach(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on("data", this.onData);
    socket.on("error", this.onError);
    socket.on("close", this.onClose);
    socket.on("timeout", this.onTimeout);
  }

  private read(): Promise<Reply> {
    const queued = this.replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Reply>((resolve, reject) => {
      this.resolveReply = resolve;
      this.rejectReply = reject;
    });
  }

  /** Socket data: complete lines make replies ("250-…" lines continue one), the rest waits. */
  private receive(chunk: Buffer): void {
    if (this.state === "closed") return;
    const text = this.buffer.length === 0 ? chunk.toString("latin1") : this.buffer + chunk.toString("latin1");
    let start = 0;
    for (;;) {
      const newline = text.indexOf("\n", start);
      if (newline < 0) break;
      const end = newline > start && text.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      const line = text.slice(start, end);
      start = newline + 1;
      if (line.trim().length === 0) continue;
      const reply = this.partial.length === 0 ? line : `${this.partial}\n${line}`;
      if (line.charCodeAt(3) === 45 && isDigits(line)) {
        this.partial = reply;
        if (reply.length > MAX_REPLY_CHARS) {
          this.tooLarge();
          return;
        }
        continue;
      }
      this.partial = "";
      this.deliver(reply);
      // deliver() may have closed the connection (an unexpected reply).
      if ((this.state as State) === "closed") return;
    }
    this.buffer = start === text.length ? "" : text.slice(start);
    if (this.buffer.length > MAX_REPLY_CHARS) this.tooLarge();
  }

  private deliver(raw: string): void {
    const text = NON_ASCII.test(raw) ? decodeUtf8(raw) : raw;
    const reply: Reply = { code: isDigits(text) ? Number(text.slice(0, 3)) : 0, text };
    const resolve = this.resolveReply;
    if (resolve) {
      this.resolveReply = this.rejectReply = undefined;
      resolve(reply);
    } else if (this.state === "idle") {
      // RFC 5321 4.2: a relay may send 421 at any time when it closes the session (idle too long).
      const unexpected =
        reply.code === 421
          ? new SmtpError("Server closed the connection", "ECONNECTION", "CONN", reply)
          : new SmtpError("Unexpected Response", "EPROTOCOL", "CONN", reply);
      this.destroy(unexpected);
    } else {
      this.replies.push(reply);
    }
  }

  private tooLarge(): void {
    this.destroy(new SmtpError("Server response exceeds maximum allowed size", "EPROTOCOL", "CONN"));
  }

  private timedOut(): void {
    // Idle for a whole socket timeout: say goodbye rather than wait for the relay to drop us.
    if (this.state === "idle") {
      this.discard();
      return;
    }
    const error = new SmtpError("Timeout", "ETIMEDOUT", "CONN");
    error.timeoutType = "SOCKET_TIMEOUT";
    this.destroy(error);
  }

  private startSetupTimer(type: SmtpTimeout, message: string): void {
    this.clearSetupTimer();
    const remaining = Math.max(this.deadline - Date.now(), 1);
    this.setupTimer = setTimeout(() => {
      this.setupTimer = undefined;
      const error = new SmtpError(message, "ETIMEDOUT", "CONN");
      error.timeoutType = type;
      this.destroy(error);
    }, remaining);
  }

  private clearSetupTimer(): void {
    if (this.setupTimer !== undefined) {
      clearTimeout(this.setupTimer);
      this.setupTimer = undefined;
    }
  }

  private socketError(error: NodeJS.ErrnoException): SmtpError {
    // System errors (connect, read, write, DNS) name their syscall; the TLS layer's own do not.
    const tlsFailure = this.handshaking && error.syscall === undefined;
    const dns = error.syscall === "getaddrinfo";
    const failure = new SmtpError(error.message, tlsFailure ? "ETLS" : dns ? "EDNS" : "ESOCKET", "CONN");
    failure.originalCode = error.code;
    return failure;
  }
}

const NO_REFUSALS: RecipientRefusal[] = [];

/** MAIL FROM, every RCPT TO and DATA, for one write. */
function pipelinedEnvelope(mailFrom: string, to: readonly string[]): string {
  let batch = `${mailFrom}\r\n`;
  for (const address of to) batch += `RCPT TO:<${address}>\r\n`;
  return `${batch}DATA\r\n`;
}

function isPositive(reply: Reply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

function mailRefused(reply: Reply): SmtpError {
  return new SmtpError("Mail command failed", "EENVELOPE", "MAIL FROM", reply);
}

/** The relay said 421 (closing), or something that is no reply, in the middle of the envelope. */
function sessionEnded(reply: Reply): SmtpError {
  return reply.code === 421
    ? new SmtpError("Server closed the connection", "ECONNECTION", "CONN", reply)
    : new SmtpError("Unexpected Response", "EPROTOCOL", "CONN", reply);
}

function refusal(recipient: string, reply: Reply): RecipientRefusal {
  return { recipient, response: reply.text, responseCode: reply.code, permanent: isPermanent(reply.code) };
}

/** As nodemailer said it (EMESSAGE at MAIL FROM), with the numbers for the transport's message. */
function overSizeLimit(size: number, limit: number): SmtpError {
  const error = new SmtpError(
    `Message size ${size} exceeds the relay's SIZE limit ${limit}`,
    "EMESSAGE",
    "MAIL FROM",
  );
  error.oversize = { size, limit };
  return error;
}

/** Every recipient refused: the reply to quote is a temporary refusal if there was one, else the last. */
function allRefused(rejected: RecipientRefusal[]): SmtpError {
  const quoted =
    rejected.find((r) => r.responseCode > 0 && r.responseCode < 500) ?? rejected[rejected.length - 1];
  const reply = quoted ? { code: quoted.responseCode, text: quoted.response } : undefined;
  const error = new SmtpError(
    "Can't send mail - all recipients were rejected",
    "EENVELOPE",
    "RCPT TO",
    reply,
  );
  error.rejectedErrors = rejected;
  return error;
}

function isDigits(line: string): boolean {
  const a = line.charCodeAt(0);
  const b = line.charCodeAt(1);
  const c = line.charCodeAt(2);
  return a >= 48 && a <= 57 && b >= 48 && b <= 57 && c >= 48 && c <= 57;
}

/** Replies are read byte per char; most are ASCII. UTF-8 text is decoded, anything else kept as bytes. */
function decodeUtf8(raw: string): string {
  const utf8 = Buffer.from(raw, "latin1").toString("utf8");
  return utf8.includes("\uFFFD") ? raw : utf8;
}

function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

function serverName(host: string): string | undefined {
  return net.isIP(host) === 0 ? host : undefined;
}

function ignore(): void {}
