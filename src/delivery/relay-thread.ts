import { parentPort, workerData } from "node:worker_threads";
import { serveCalls } from "../threads/thread-server.js";
import { toWire } from "../threads/wire-error.js";
import { type DispatchJob, LocalDispatcher } from "./dispatch.js";
import { relayFailureLog } from "./relay-failure-log.js";
import { type SmtpSettings, SmtpTransport } from "./transports/smtp.js";

// The worker thread behind ThreadedDispatcher: composes each message and speaks SMTP to the relay.
const port = parentPort;
if (!port) throw new Error("relay-thread.ts runs as a worker thread (see threaded-dispatcher.ts)");

// Replies are gathered per turn of the event loop: the SMTP replies read in one turn cross in one message.
const thread = serveCalls(port, run);
// Failures are counted here and only the log lines cross (see relayFailureLog).
const reportFailure = relayFailureLog((line) =>
  thread.emit("relayFailure", { err: toWire(line.err), failuresSinceLastLog: line.failuresSinceLastLog }),
);
const dispatcher = new LocalDispatcher(new SmtpTransport(workerData as SmtpSettings, reportFailure));

async function run(method: string, args: unknown[]): Promise<unknown> {
  switch (method) {
    case "dispatch":
      return dispatcher.dispatch(args[0] as DispatchJob);
    case "close":
      return dispatcher.close();
    default:
      throw new Error(`the relay thread has no method ${method}`);
  }
}
