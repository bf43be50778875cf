import type { FastifyBaseLogger } from "fastify";
import { type Config, requireVerifiedDomain } from "../config/config.js";
import { createResolver } from "../dns/resolver.js";
import type { SecretBox } from "../domain/secret-box.js";
import type { MailStore } from "../store/types.js";
import { DomainChecker } from "./domain-checker.js";
import { DomainDirectory } from "./domain-directory.js";
import { DomainService } from "./domain-service.js";
import { type FromPolicy, verifiedDomainPolicy } from "./sending-policy.js";

/** Sending domains as one Mailroom wires them (server.ts). */
export interface Domains {
  service: DomainService;
  /** Every domain in memory: the sign step's keys. */
  directory: DomainDirectory;
  checker: DomainChecker;
  /** MAILROOM_REQUIRE_VERIFIED_DOMAIN's check for the accept service; undefined when it is off. */
  fromPolicy: FromPolicy | undefined;
}

export function setUpDomains(
  config: Config,
  store: MailStore,
  secrets: SecretBox,
  logger: FastifyBaseLogger,
): Domains {
  const directory = new DomainDirectory(store, secrets);
  // MAILROOM_HOSTNAME (direct-to-MX delivery) receives bounces; read defensively until that setting exists.
  const bounceHost = config.hostname;
  const service = new DomainService(
    store,
    secrets,
    createResolver(config.dnsServers),
    {
      maxDomains: config.maxDomains,
      records: { spfMechanisms: config.spfMechanisms ?? [`a:${bounceHost}`], bounceHost },
      checkIntervalMs: config.domainCheckIntervalMs,
    },
    () => directory.invalidate(),
  );
  return {
    service,
    directory,
    checker: new DomainChecker(store, service, logger, config.domainCheckIntervalMs),
    fromPolicy: requireVerifiedDomain(config) ? verifiedDomainPolicy(directory) : undefined,
  };
}
