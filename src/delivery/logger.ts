import type { BaseLogger } from "pino";

/** The log levels delivery writes at; the server's pino (Fastify) logger satisfies it. */
export type DeliveryLogger = Pick<BaseLogger, "debug" | "info" | "warn" | "error">;
