import type { MessagePort } from "node:worker_threads";
import { Outbox } from "./outbox.js";
import {
  CLOSE_METHOD,
  DEADLINE_PASSED,
  type ThreadApi,
  type ThreadCall,
  type ThreadReply,
} from "./protocol.js";
import { toWire } from "./wire-error.js";

export interface ThreadServer {
  /** Raises an event on the client's side (ThreadClientOptions.onEvent). */
  emit(event: string, data?: unknown): void;
}

/**
 * The answering side of a thread (see ThreadClient): runs each call on `api`, the thread's
 * implementation of the interface its client is written against, and posts its result or error back.
 * `close` is answered at once, and then the port closes, so the thread's event loop empties and the
 * thread ends. `schedule` decides how replies are gathered (see Outbox).
 */
export function serveCalls<Api extends ThreadApi>(
  port: MessagePort,
  api: Api,
  schedule?: (flush: () => void) => void,
): ThreadServer {
  const run = async (method: string, args: unknown[]): Promise<unknown> => {
    const fn = (api as Record<string, unknown>)[method];
    // Only a client built against another API could ask this: a bug, answered as an error.
    if (typeof fn !== "function") throw new Error(`the thread has no method ${method}`);
    return fn.apply(api, args);
  };
  const outbox = new Outbox<ThreadReply>((batch) => port.postMessage(batch), schedule);
  const answer = (call: ThreadCall, running: Promise<unknown>) =>
    running.then(
      (value) => {
        if (call.method !== CLOSE_METHOD) return outbox.push({ id: call.id, value });
        port.postMessage([{ id: call.id, value }]);
        port.close();
      },
      (error: unknown) => outbox.push({ id: call.id, error: toWire(error) }),
    );
  // Calls with a deadline (ThreadClient.callWithin) run one after another, each checked when its turn
  // comes: one that waited past its deadline is not started, its caller has stopped waiting, and
  // running it would only delay the next.
  let deadlined: Promise<unknown> = Promise.resolve();
  port.on("message", (batch: ThreadCall[]) => {
    for (const call of batch) {
      const { deadline } = call;
      if (deadline === undefined) {
        void answer(call, run(call.method, call.args));
        continue;
      }
      deadlined = deadlined.then(() =>
        answer(
          call,
          Date.now() > deadline
            ? Promise.reject(
                Object.assign(new Error(`${call.method} was not started before its deadline`), {
                  code: DEADLINE_PASSED,
                }),
              )
            : run(call.method, call.args),
        ),
      );
    }
  });
  return { emit: (event, data) => outbox.push({ event, data }) };
}
