// The sample Grafana dashboard asks only for series the service exports,
// grouped and filtered by labels those series have: a renamed metric or
// label fails here, not on an operator's screen. The series and their label
// names come from a real server's registry (SQLite, with Redis so that the
// Redis gauge exists).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/jobs.js';
import { startServer, type TestServer } from '../helpers/server.js';

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}

const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy/grafana/jobrunner.json'), 'utf8')) as { uid: string; panels: Panel[]; templating: { list: { name: string; query: unknown }[] } };
const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

/** Label names of each exported metric; Prometheus adds job and instance, histograms le. */
type Families = Map<string, Set<string>>;
function family(families: Families, name: string): Set<string> | undefined {
  return families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
}

describe('the Grafana dashboard', () => {
  let s: TestServer;
  let families: Families;
  beforeAll(async () => {
    s = await startServer('sqlite', { REDIS_URL: 'redis://127.0.0.1:6379/0', REDIS_PREFIX: `jr-grafana-${process.pid}` });
    families = new Map(s.app.metrics!.registry.getMetricsAsArray().map((m) => [m.name, new Set(['job', 'instance', 'le', ...((m as unknown as { labelNames: string[] }).labelNames ?? [])])]));
  });
  afterAll(async () => s?.stop());

  it('has panels with queries, a datasource and a job variable', () => {
    expect(dashboard.uid).toBe('jobrunner');
    expect(exprs.length).toBeGreaterThan(20);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'job']);
  });

  it('names only exported series, and only labels they carry (plus job and instance, which Prometheus adds)', () => {
    const problems: string[] = [];
    for (const { panel, expr } of exprs) {
      for (const m of expr.matchAll(/\b(jobrunner_[a-z0-9_]+)(\{[^}]*\})?/g)) {
        const f = family(families, m[1]!);
        if (!f) {
          problems.push(`${panel}: ${m[1]} is not exported`);
          continue;
        }
        const labels = f;
        for (const l of (m[2] ?? '').matchAll(/([a-z_]+)\s*(=~|!~|!=|=)/g)) if (!labels.has(l[1]!)) problems.push(`${panel}: ${m[1]} has no label ${l[1]}`);
      }
      for (const by of expr.matchAll(/by \(([^)]*)\)/g)) {
        const names = [...expr.matchAll(/\b(jobrunner_[a-z0-9_]+)/g)].map((x) => family(families, x[1]!)).filter(Boolean) as Set<string>[];
        const labels = new Set(names.flatMap((f) => [...f]));
        for (const l of by[1]!.split(',').map((x) => x.trim())) if (!labels.has(l)) problems.push(`${panel}: grouped by ${l}, which its series lack`);
      }
    }
    expect(problems).toEqual([]);
  });
});
