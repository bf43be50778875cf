/**
 * Just enough of the server side of SMTP to take mail and throw it away: greeting, EHLO/HELO (announcing
 * PIPELINING and 8BITMIME), MAIL, RCPT, DATA up to "<CRLF>.<CRLF>", RSET, NOOP, QUIT. No I/O here: the
 * caller feeds received bytes and writes back what `feed` returns. Each finished DATA is reported with its
 * size, its Message-ID header (if any) and whether it carries a DKIM-Signature header, so the sink can count
 * deliveries, spot duplicates and unsigned mail; and, for the few messages the caller asks for, its bytes.
 */

export interface ReceivedMessage {
  /** Size as sent in DATA (dot-stuffed), without the final ".\r\n". */
  bytes: number;
  messageId: string | undefined;
  /** Whether the header has a DKIM-Signature field (not whether it verifies). */
  signed: boolean;
  /** The message as the client meant it (dot-stuffing undone), when it was claimed as a sample. */
  raw?: Buffer;
}

export type MessageListener = (message: ReceivedMessage) => void;

/** Asked when a DATA starts: true to keep that message's bytes (a sample for checking signatures). */
export type SampleClaim = () => boolean;

const TERMINATOR = "\r\n.\r\n";
const MAX_HEADER_CHARS = 16 * 1024;
const MAX_LINE_CHARS = 64 * 1024;
const MESSAGE_ID = /(?:^|\r\n)message-id:[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)/i;
const DKIM_SIGNATURE = /(?:^|\r\n)dkim-signature[ \t]*:/i;
/** A line's leading period, added by the client's dot-stuffing (RFC 5321 4.5.2). */
const STUFFED_DOT = /(^|\r\n)\./g;

export class SmtpSession {
  /** True once the client said QUIT; the caller should end the connection after writing the reply. */
  closed = false;
  private mode: "command" | "data" = "command";
  private pending = "";
  private hasSender = false;
  private recipients = 0;
  // DATA state
  private carry = "";
  private dataChars = 0;
  private head = "";
  private headDone = false;
  /** The DATA text received so far, only while this message is kept as a sample. */
  private kept: string[] | undefined;

  constructor(
    private readonly hostname: string,
    private readonly onMessage: MessageListener,
    private readonly claimSample: SampleClaim = () => false,
  ) {}

  greeting(): string {
    return `220 ${this.hostname} ESMTP bench sink\r\n`;
  }

  /** Consumes received bytes; returns the replies to send (possibly empty). */
  feed(chunk: Buffer): string {
    let text = chunk.toString("latin1");
    let out = "";
    while (text.length > 0 && !this.closed) {
      if (this.mode === "data") {
        const rest = this.feedData(text);
        if (rest === undefined) break;
        out += `250 2.0.0 Ok: queued\r\n`;
        text = rest;
      } else {
        const reply = this.feedCommands(text);
        out += reply.out;
        text = reply.rest;
      }
    }
    return out;
  }

  /** Returns the text after the end of DATA, or undefined when the message has not ended yet. */
  private feedData(text: string): string | undefined {
    if (!this.headDone) {
      this.head += text;
      const end = this.head.indexOf("\r\n\r\n");
      if (end >= 0 || this.head.length > MAX_HEADER_CHARS) {
        this.head = this.head.slice(0, end >= 0 ? end : MAX_HEADER_CHARS);
        this.headDone = true;
      }
    }
    const window = this.carry + text;
    const at = window.indexOf(TERMINATOR);
    if (at < 0) {
      this.dataChars += text.length;
      this.carry = window.slice(-4);
      this.kept?.push(text);
      return undefined;
    }
    if (!this.headDone) {
      const end = this.head.indexOf(TERMINATOR);
      if (end >= 0) this.head = this.head.slice(0, end);
    }
    const consumed = at + TERMINATOR.length - this.carry.length;
    const bytes = this.dataChars + consumed - 3; // the final ".\r\n" is not part of the message
    const message: ReceivedMessage = {
      bytes,
      messageId: this.messageId(),
      signed: DKIM_SIGNATURE.test(this.head),
    };
    if (this.kept) {
      // The terminator may have begun in an earlier chunk: cut ".\r\n" off the joined text.
      const data = (this.kept.join("") + text.slice(0, consumed)).slice(0, -3);
      message.raw = Buffer.from(data.replace(STUFFED_DOT, "$1"), "latin1");
      this.kept = undefined;
    }
    this.onMessage(message);
    this.mode = "command";
    this.hasSender = false;
    this.recipients = 0;
    return text.slice(consumed);
  }

  private messageId(): string | undefined {
    const match = MESSAGE_ID.exec(this.head);
    return match?.[1]?.replace(/\r\n[ \t]+/g, " ").trim() || undefined;
  }

  private startData(): void {
    this.mode = "data";
    this.carry = "\r\n"; // the CRLF that ended the DATA command, so an empty message ends at "."
    this.dataChars = 0;
    this.head = "";
    this.headDone = false;
    this.kept = this.claimSample() ? [] : undefined;
  }

  private feedCommands(text: string): { out: string; rest: string } {
    this.pending += text;
    let out = "";
    let start = 0;
    for (;;) {
      const newline = this.pending.indexOf("\n", start);
      if (newline < 0) break;
      const line = this.pending.slice(start, newline).replace(/\r$/, "");
      start = newline + 1;
      out += this.command(line);
      if (this.closed) break;
      if (this.mode === "data") {
        const rest = this.pending.slice(start);
        this.pending = "";
        return { out, rest };
      }
    }
    this.pending = this.pending.slice(start);
    if (this.pending.length > MAX_LINE_CHARS) {
      this.pending = "";
      out += "500 5.5.2 Error: line too long\r\n";
    }
    return { out, rest: "" };
  }

  private command(line: string): string {
    const verb = line.slice(0, 4).toUpperCase();
    switch (verb) {
      case "EHLO":
        return `250-${this.hostname}\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n`;
      case "HELO":
        return `250 ${this.hostname}\r\n`;
      case "MAIL":
        this.hasSender = true;
        this.recipients = 0;
        return "250 2.1.0 Ok\r\n";
      case "RCPT":
        if (!this.hasSender) return "503 5.5.1 Error: need MAIL command\r\n";
        this.recipients++;
        return "250 2.1.5 Ok\r\n";
      case "DATA":
        if (this.recipients === 0) return "503 5.5.1 Error: need RCPT command\r\n";
        this.startData();
        return "354 End data with <CR><LF>.<CR><LF>\r\n";
      case "RSET":
        this.hasSender = false;
        this.recipients = 0;
        return "250 2.0.0 Ok\r\n";
      case "NOOP":
        return "250 2.0.0 Ok\r\n";
      case "QUIT":
        this.closed = true;
        return "221 2.0.0 Bye\r\n";
      default:
        return "502 5.5.2 Error: command not recognized\r\n";
    }
  }
}
