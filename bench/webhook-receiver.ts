/**
 * The webhook row's receiver: answers every POST 204 at once and counts what came, by `webhook-id`
 * (a retried or replayed event carries the same id), so the row can say when every event had arrived.
 * It checks nothing else: the tests verify signatures; here the receiver must cost the machine little.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface WebhookReceiver {
  url: string;
  /** Distinct event ids received, and POSTs in all (more when some came twice). */
  counts(): { events: number; posts: number; lastAt: number };
  reset(): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  let ids = new Set<string>();
  let posts = 0;
  let lastAt = 0;
  const server: Server = createServer((request, response) => {
    request.resume(); // the body is not needed, only read to the end
    request.on("end", () => {
      const id = request.headers["webhook-id"];
      if (typeof id === "string") ids.add(id);
      posts += 1;
      lastAt = Date.now();
      response.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    counts: () => ({ events: ids.size, posts, lastAt }),
    reset() {
      ids = new Set();
      posts = 0;
      lastAt = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
