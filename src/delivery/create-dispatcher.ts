import type { Config } from "../config/config.js";
import { type Dispatcher, LocalDispatcher } from "./dispatch.js";
import type { DeliveryLogger } from "./logger.js";
import { ThreadedDispatcher } from "./threaded-dispatcher.js";
import { CaptureTransport } from "./transports/capture.js";

/**
 * The dispatcher of MAILROOM_DELIVERY_MODE: the relay (MAILROOM_SMTP_URL), spoken to from a thread of
 * its own; or capture, so nothing is ever sent by surprise (capturing is cheap enough to stay on the
 * main thread).
 */
export function createDispatcher(config: Config, logger: Pick<DeliveryLogger, "warn">): Dispatcher {
  if (config.deliveryMode === "capture" || config.smtpUrl === undefined) {
    return new LocalDispatcher(new CaptureTransport());
  }
  return new ThreadedDispatcher(
    {
      url: config.smtpUrl,
      poolSize: config.smtpPoolSize,
      startTls: config.smtpStartTls,
      connectTimeoutMs: config.smtpConnectTimeoutMs,
      socketTimeoutMs: config.smtpSocketTimeoutMs,
      ca: config.smtpCa,
    },
    logger,
  );
}
