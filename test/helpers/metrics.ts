import parsePrometheusTextFormat, {
  type ParsedFamily,
  type ParsedSample,
} from "parse-prometheus-text-format";
import { request } from "./mailroom.js";

/**
 * One scrape of GET /metrics, parsed with a Prometheus text-format parser. parse-prometheus-text-format
 * 1.1.1 folds the series of a histogram with labels into one sample without labels, so samples are
 * looked up in a second parse where histograms are declared untyped: each `_bucket`, `_sum` and
 * `_count` line is then a sample of its own, with its labels.
 */
export class Scrape {
  private readonly families: Map<string, ParsedFamily>;
  private readonly series = new Map<string, ParsedSample[]>();

  constructor(readonly text: string) {
    this.families = new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family]));
    const flat = parsePrometheusTextFormat(text.replace(/^# TYPE (\S+) histogram$/gm, "# TYPE $1 untyped"));
    for (const family of flat) {
      this.series.set(family.name, [...(this.series.get(family.name) ?? []), ...family.metrics]);
    }
  }

  /** A metric family as declared (its type and help). */
  family(name: string): ParsedFamily {
    const family = this.families.get(name);
    if (!family) throw new Error(`no metric ${name} in the scrape`);
    return family;
  }

  /** The value of the series `name` whose labels include `labels` (the only one, for a metric without labels). */
  value(name: string, labels: Record<string, string> = {}): number {
    const found = (this.series.get(name) ?? []).find((sample) =>
      Object.entries(labels).every(([key, value]) => sample.labels?.[key] === value),
    );
    if (found?.value === undefined) throw new Error(`no series ${name} with ${JSON.stringify(labels)}`);
    return Number(found.value);
  }

  /** A histogram's number of observations. */
  count(name: string, labels: Record<string, string> = {}): number {
    return this.value(`${name}_count`, labels);
  }

  /** A histogram's sum of observations. */
  sum(name: string, labels: Record<string, string> = {}): number {
    return this.value(`${name}_sum`, labels);
  }
}

/** GETs /metrics (with `token` as Bearer when given) and parses it; throws unless it answers 200. */
export async function scrape(server: { url: string }, token?: string): Promise<Scrape> {
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const response = await request(server, "GET", "/metrics", { headers });
  if (response.status !== 200) throw new Error(`GET /metrics: ${response.status} ${response.text}`);
  return new Scrape(response.text);
}
