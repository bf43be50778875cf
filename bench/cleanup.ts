/**
 * One place that knows how to undo everything the bench started: child processes, the private Postfix
 * instance, temporary directories, the temporary PostgreSQL database. Steps run last-in first-out, on a
 * normal finish, on an error, and on Ctrl-C / SIGTERM.
 */

type Step = { name: string; run: () => Promise<void> | void };

const steps: Step[] = [];
let running: Promise<void> | undefined;
let closing = false;

/** True once cleanup has begun: nothing new may be started from then on. */
export function isClosing(): boolean {
  return closing;
}

/** Registers an undo step; the returned function removes it again (call it once the step has been done). */
export function onCleanup(name: string, run: () => Promise<void> | void): () => void {
  const step: Step = { name, run };
  steps.push(step);
  return () => {
    const at = steps.indexOf(step);
    if (at >= 0) steps.splice(at, 1);
  };
}

function withTimeout(promise: Promise<void>, ms: number, name: string): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      console.error(`cleanup: "${name}" did not finish within ${ms} ms; moving on`);
      resolve();
    }, ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        console.error(`cleanup: "${name}" failed: ${error instanceof Error ? error.message : String(error)}`);
        resolve();
      },
    );
  });
}

/**
 * Registers `undo` as a cleanup step and returns a function that runs it now. Either way it runs at most
 * once, and a second caller waits for the first: a scenario stopping its Postfix while Ctrl-C cleans up
 * cannot race the removal of the directory that Postfix still uses.
 */
export function undoable(name: string, undo: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  const once = () => {
    done ??= Promise.resolve().then(undo);
    return done;
  };
  const unregister = onCleanup(name, once);
  return () => once().finally(unregister);
}

/** Runs every registered step once, newest first. Safe to call more than once. */
export function cleanupAll(): Promise<void> {
  closing = true;
  running ??= (async () => {
    while (steps.length > 0) {
      const step = steps.pop() as Step;
      await withTimeout(
        Promise.resolve().then(() => step.run()),
        30_000, // longer than any stop's own SIGKILL deadline (Mailroom: 20 s)
        step.name,
      );
    }
    running = undefined;
  })();
  return running;
}

/**
 * Ctrl-C, SIGTERM, SIGHUP, crashes and the overall time limit all clean up before the process exits.
 */
export function installExitHandlers(timeLimitMs: number): void {
  let exiting = false;
  const exitAfterCleanup = (code: number, why: string) => {
    if (exiting) {
      console.error(`\n${why} again: exiting without waiting for cleanup`);
      process.exit(code);
    }
    exiting = true;
    console.error(`\n${why}: cleaning up...`);
    void cleanupAll().finally(() => process.exit(code));
  };
  const limit = setTimeout(
    () => exitAfterCleanup(124, `time limit of ${Math.round(timeLimitMs / 60_000)} minutes reached`),
    timeLimitMs,
  );
  limit.unref();
  process.on("SIGINT", () => exitAfterCleanup(130, "interrupted"));
  process.on("SIGTERM", () => exitAfterCleanup(143, "terminated"));
  process.on("SIGHUP", () => exitAfterCleanup(129, "hung up"));
  process.on("uncaughtException", (error) => {
    console.error(error);
    exitAfterCleanup(1, "uncaught exception");
  });
  process.on("unhandledRejection", (error) => {
    console.error(error);
    exitAfterCleanup(1, "unhandled rejection");
  });
}
