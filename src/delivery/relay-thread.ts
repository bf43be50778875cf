import { parentPort, workerData } from "node:worker_threads";
import { serveCalls } from "../threads/thread-server.js";
import { toWire } from "../threads/wire-error.js";
import { LocalDispatcher } from "./dispatch.js";
import { MxTransport } from "./mx/mx-transport.js";
import { relayFailureLog } from "./relay-failure-log.js";
import type { RelayThreadApi, ThreadSettings } from "./threaded-dispatcher.js";
import { type SmtpSettings, SmtpTransport } from "./transports/smtp.js";

// The worker thread behind ThreadedDispatcher: composes each message and speaks SMTP to the relay
// (or to each recipient domain's MX hosts).
const port = parentPort;
if (!port) throw new Error("relay-thread.ts runs as a worker thread (see threaded-dispatcher.ts)");

// Replies are gathered per turn of the event loop: the SMTP replies read in one turn cross in one message.
// The API is the dispatcher itself: dispatch, connections (for /metrics) and close.
const thread = serveCalls<RelayThreadApi>(port, {
  dispatch: (job) => dispatcher.dispatch(job),
  connections: () => dispatcher.connections(),
  close: () => dispatcher.close(),
});
// Failures are counted here and only the log lines cross (see relayFailureLog).
const reportFailure = relayFailureLog((line) =>
  thread.emit("relayFailure", { err: toWire(line.err), failuresSinceLastLog: line.failuresSinceLastLog }),
);
// The same thread serves direct-to-MX delivery (MAILROOM_DELIVERY_MODE=mx) with its own transport.
const settings = workerData as ThreadSettings;
const dispatcher = new LocalDispatcher(
  "mx" in settings
    ? new MxTransport(settings.mx)
    : new SmtpTransport(settings as SmtpSettings, reportFailure),
);
