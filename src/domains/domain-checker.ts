import type { FastifyBaseLogger } from "fastify";
import type { MailStore } from "../store/types.js";
import type { DomainService } from "./domain-service.js";

/** Domains looked up per round; the rest wait for the next one (due ones first). */
const BATCH = 20;

/**
 * The background re-check (MAILROOM_DOMAIN_CHECK_INTERVAL_MS): every round, claims the domains whose
 * check is due and looks their records up again (DomainService.check: a verified domain that lost
 * its DKIM record becomes failed, with a Notification). A claim moves the domain's due time on
 * first, so among processes sharing PostgreSQL one checks a given domain per round.
 */
export class DomainChecker {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;

  constructor(
    private readonly store: Pick<MailStore, "claimDomainChecks">,
    private readonly domains: Pick<DomainService, "check">,
    private readonly logger: Pick<FastifyBaseLogger, "warn">,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    // Looks for due domains at most every minute (sooner with a short interval): a domain's own due
    // time decides when it is checked.
    const every = Math.min(this.intervalMs, 60_000);
    this.timer = setInterval(() => {
      this.round ??= this.runRound().finally(() => {
        this.round = undefined;
      });
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.round;
  }

  private async runRound(): Promise<void> {
    try {
      for (;;) {
        const now = Date.now();
        const due = await this.store.claimDomainChecks(now, now + this.intervalMs, BATCH);
        for (const domain of due) {
          await this.domains.check(domain, now).catch((error: unknown) => {
            this.logger.warn({ err: error, domain: domain.domain_name }, "domain re-check failed");
          });
        }
        if (due.length < BATCH) return;
      }
    } catch (error) {
      this.logger.warn({ err: error }, "domain re-check: could not claim due domains");
    }
  }
}
