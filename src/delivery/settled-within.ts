/**
 * True when every promise settled within `timeoutMs` (a shutdown gives work in flight that long).
 * Used by both workers: the delivery worker and the webhook sender.
 */
export async function settledWithin(promises: Promise<unknown>[], timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const settled = Promise.allSettled(promises).then(() => true as const);
  const result = await Promise.race([settled, timeout]);
  clearTimeout(timer);
  return result;
}
