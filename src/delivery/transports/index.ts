import type { Config } from "../../config/config.js";
import { CaptureTransport } from "./capture.js";
import { SmtpTransport } from "./smtp.js";
import type { Transport } from "./transport.js";

/** The relay when MAILROOM_SMTP_URL is set; otherwise capture, so nothing is ever sent by surprise. */
export function createTransport(config: Config, onTransportError: (error: Error) => void): Transport {
  if (config.smtpUrl === undefined) return new CaptureTransport();
  return new SmtpTransport(
    {
      url: config.smtpUrl,
      poolSize: config.smtpPoolSize,
      startTls: config.smtpStartTls,
      connectTimeoutMs: config.smtpConnectTimeoutMs,
      socketTimeoutMs: config.smtpSocketTimeoutMs,
    },
    onTransportError,
  );
}
