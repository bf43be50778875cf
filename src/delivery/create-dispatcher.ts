import type { Config } from "../config/config.js";
import type { Dispatcher } from "./dispatch.js";
import type { DeliveryLogger } from "./logger.js";
import { mxSettingsOf } from "./mx/mx-settings.js";
import { warmupsOver } from "./mx/warmup.js";
import { ThreadedDispatcher } from "./threaded-dispatcher.js";

/**
 * The dispatcher of MAILROOM_DELIVERY_MODE: the relay (MAILROOM_SMTP_URL), spoken to from a thread of
 * its own; each recipient domain's MX hosts (mx), from the same kind of thread; or capture, so nothing is ever sent by surprise (capturing is cheap enough to stay on the
 * main thread).
 *
 * Composing (dispatch.ts, compose*.ts, nodemailer's MIME helpers) is loaded only for capture: with a
 * relay or MX it happens in the relay thread, and the main thread would only carry its code.
 */
export async function createDispatcher(
  config: Config,
  logger: Pick<DeliveryLogger, "warn">,
): Promise<Dispatcher> {
  if (config.deliveryMode === "mx") {
    // Receivers check the EHLO name; a bare host name is a common reason for mail to be refused.
    if (!config.hostname.includes(".")) {
      logger.warn(
        { hostname: config.hostname },
        "MAILROOM_HOSTNAME is not a fully qualified domain name; receivers may refuse mail: set it to this machine's public name",
      );
    }
    for (const line of warmupsOver(config.domainWarmup, Date.now()))
      logger.warn({ setting: "MAILROOM_DOMAIN_WARMUP" }, line);
    // Like the relay, off the main thread: composing and SMTP were a fifth of its work (performance.md).
    return new ThreadedDispatcher({ mx: mxSettingsOf(config) }, logger);
  }
  if (config.deliveryMode === "capture" || config.smtpUrl === undefined) {
    const [{ LocalDispatcher }, { CaptureTransport }] = await Promise.all([
      import("./dispatch.js"),
      import("./transports/capture.js"),
    ]);
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
