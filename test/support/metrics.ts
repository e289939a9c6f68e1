// Scraping /metrics as Prometheus does, parsed by a real exposition-format parser.
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";

export type Families = ReturnType<typeof parsePrometheusTextFormat> & { text?: string };

/** GET `url` (a /metrics URL), checked and parsed. */
export async function scrape(url: string, init?: RequestInit): Promise<Families> {
  const res = await fetch(url, init);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const families: Families = parsePrometheusTextFormat(text);
  families.text = text;
  return families;
}

/** The family `name`; fails when absent. */
export function family(families: Families, name: string): Families[number] {
  const f = families.find((x) => x.name === name);
  assert.ok(f, `no metric ${name}`);
  return f;
}

const matches = (have: Record<string, string> | undefined, want: Record<string, string>) => Object.entries(want).every(([k, v]) => have?.[k] === v);

/** The sum of a counter's or gauge's series whose labels include `labels` (0 when none). */
export function value(families: Families, name: string, labels: Record<string, string> = {}): number {
  const f = families.find((x) => x.name === name);
  if (!f) return 0;
  return f.metrics.filter((m) => matches(m.labels, labels)).reduce((sum, m) => sum + Number(m.value), 0);
}

/**
 * The sum of a histogram's sample counts over its series whose labels include `labels`. The
 * parser merges a histogram's labelled series into one, so its `_count` samples are parsed
 * again as a family of their own.
 */
export function histogramCount(families: Families, name: string, labels: Record<string, string> = {}): number {
  const lines = (families.text ?? "").split("\n").filter((l) => l.startsWith(`${name}_count{`) || l.startsWith(`${name}_count `));
  if (lines.length === 0) return 0;
  return value(parsePrometheusTextFormat(`# TYPE ${name}_count gauge\n${lines.join("\n")}\n`), `${name}_count`, labels);
}
