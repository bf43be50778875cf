/** Postfix's smtp-source as the SMTP load generator: fixed message count, fixed number of sessions. */
import { LOOPBACK } from "./ports.js";
import { SMTP_SOURCE } from "./postfix.js";
import { runCommand } from "./proc.js";
import { now } from "./sink.js";

/** The envelope sender and From header of every message smtp-source sends. */
export const SOURCE_SENDER = "sender@example.com";

export interface SourceRun {
  startedAt: number;
  finishedAt: number;
}

/**
 * Sends `messages` messages of `bodyBytes` bytes over `sessions` parallel SMTP sessions, each session
 * reusing its connection (-d), and resolves once the server has acknowledged the last one.
 */
export async function runSmtpSource(
  port: number,
  options: { messages: number; sessions: number; bodyBytes: number; timeoutMs: number },
): Promise<SourceRun> {
  const args = [
    "-s",
    String(options.sessions),
    "-m",
    String(options.messages),
    "-l",
    String(options.bodyBytes),
    "-d",
    "-M",
    "source.bench.localhost",
    "-f",
    SOURCE_SENDER,
    "-t",
    "recipient@example.net",
    "-S",
    "Mailroom bench message",
    `${LOOPBACK}:${port}`,
  ];
  const startedAt = now();
  const result = await runCommand(SMTP_SOURCE, args, { timeoutMs: options.timeoutMs });
  const finishedAt = now();
  if (result.code !== 0) {
    throw new Error(`smtp-source exited with code ${result.code}: ${result.stderr.trim()}`);
  }
  return { startedAt, finishedAt };
}
