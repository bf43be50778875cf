/**
 * The relay's settings and their one-line description, apart from the SMTP client (smtp.ts and the
 * pool under it): the main thread describes the relay, and only the relay thread needs the client.
 */
export interface SmtpSettings {
  /** smtp://[user:pass@]host[:port] (STARTTLS per `startTls`) or smtps://… (TLS from the first byte). */
  url: string;
  poolSize: number;
  startTls: "opportunistic" | "required";
  connectTimeoutMs: number;
  socketTimeoutMs: number;
  /** PEM text of MAILROOM_SMTP_CA_FILE: the CA the relay's certificate must chain to. */
  ca?: string;
}

/** One sentence for the start-up log: where mail goes and how, without the URL's credentials. */
export function describeRelay(settings: SmtpSettings): string {
  const url = new URL(settings.url);
  const tlsMode = url.protocol === "smtps:" ? "implicit TLS" : `STARTTLS ${settings.startTls}`;
  return `relaying mail through ${url.protocol}//${url.host} (${tlsMode}, up to ${settings.poolSize} connections)`;
}
