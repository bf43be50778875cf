import type { FastifyReply, FastifyRequest, RequestPayload } from "fastify";
import { ByteGate } from "../domain/byte-gate.js";
import { ApiError } from "../domain/errors.js";

export interface BodyBudgetSettings {
  /** MAILROOM_BODY_MEMORY: request body bytes being read and processed at once. */
  budgetBytes: number;
  /** MAILROOM_BODY_WAIT_MS: how long a body that does not fit may wait for room before a 503. */
  waitMs: number;
  /** MAILROOM_BODY_LIMIT: what a body without a Content-Length may grow to, so what it reserves. */
  bodyLimitBytes: number;
}

type Done = (error: Error | null, payload?: RequestPayload) => void;

/**
 * Admission control for request bodies. A body costs several times its size while it is parsed,
 * decoded, checked and stored (16 concurrent 10 MB sends once took the process from 247 MB to 3.4 GB),
 * so the bytes being processed at once are bounded: a request takes its Content-Length (a body
 * without one, the body limit) from the budget before its body is read, and gives it back when its
 * response is done. One that does not fit waits, in arrival order, up to `waitMs`, then gets a 503
 * with Retry-After: the client retries a moment later instead of the server running out of memory.
 * Requests without a body never wait.
 */
export class BodyBudget {
  private readonly gate: ByteGate;
  private readonly retryAfter: string;

  /** Bytes of the bodies admitted now (tests wait on it). */
  get inUse(): number {
    return this.gate.inUse;
  }

  constructor(private readonly settings: BodyBudgetSettings) {
    this.gate = new ByteGate(settings.budgetBytes);
    this.retryAfter = String(Math.max(1, Math.ceil(settings.waitMs / 1000)));
  }

  /** A preParsing hook: it runs after authentication, before a byte of the body is read. */
  readonly hook = (
    request: FastifyRequest,
    reply: FastifyReply,
    payload: RequestPayload,
    done: Done,
  ): void => {
    const bytes = this.bytesOf(request);
    if (bytes === 0) {
      done(null, payload);
      return;
    }
    // A callback hook with a synchronous fast path: no promise, timer or extra closure unless it must wait.
    if (this.gate.tryTake(bytes)) {
      this.hold(reply, bytes);
      done(null, payload);
      return;
    }
    const admitted = () => {
      this.hold(reply, bytes);
      done(null, payload);
    };
    let timer: NodeJS.Timeout | undefined;
    const cancel = this.gate.wait(bytes, () => {
      clearTimeout(timer);
      request.raw.off("close", leftWhileWaiting);
      admitted();
    });
    const leftWhileWaiting = () => {
      // The client gave up while waiting: it leaves the queue.
      if (cancel()) clearTimeout(timer);
    };
    // Only when the wait did not end at once (a cancelled one freeing room).
    timer = setTimeout(() => {
      if (!cancel()) return;
      request.raw.off("close", leftWhileWaiting);
      reply.header("retry-after", this.retryAfter);
      done(
        new ApiError(
          "ServerBusy",
          `Mailroom is busy reading other request bodies (MAILROOM_BODY_MEMORY is ${this.settings.budgetBytes} bytes); nothing was accepted. Retry after the seconds in Retry-After.`,
        ),
      );
    }, this.settings.waitMs);
    request.raw.once("close", leftWhileWaiting);
  };

  /**
   * Gives the bytes back once the response is done: "close" comes once, when it is sent or the
   * connection dropped, whichever is first (so on(), not once() and its wrapper).
   */
  private hold(reply: FastifyReply, bytes: number): void {
    reply.raw.on("close", () => this.gate.give(bytes));
  }

  private bytesOf(request: FastifyRequest): number {
    const { headers } = request;
    const length = headers["content-length"];
    if (length !== undefined) {
      const declared = Number(length);
      // More than the body limit is refused (413) without being read: nothing to take.
      return Number.isSafeInteger(declared) && declared <= this.settings.bodyLimitBytes ? declared : 0;
    }
    return headers["transfer-encoding"] === undefined ? 0 : this.settings.bodyLimitBytes;
  }
}
