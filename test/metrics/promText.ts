// A strict parser of the Prometheus text exposition format (0.0.4), written
// here because prom-client only writes it. It throws on anything a
// Prometheus server would refuse or that the format forbids: bad names,
// bad escapes, a sample before its TYPE or of another family in between,
// a duplicate series, histogram buckets out of order or disagreeing with
// _count, negative counters.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** A float as Prometheus reads it (Go's ParseFloat: Inf and NaN in any letter case; prom-client writes `Nan`). */
function parseValue(text: string, line: number): number {
  if (/^\+?inf(inity)?$/i.test(text)) return Infinity;
  if (/^-inf(inity)?$/i.test(text)) return -Infinity;
  if (/^nan$/i.test(text)) return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${line}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** Parses `name{a="b",...} value [timestamp]`. */
function parseSample(text: string, line: number): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(text);
  if (!m) throw new Error(`line ${line}: no metric name in ${JSON.stringify(text)}`);
  const name = m[1]!;
  let i = name.length;
  const labels: Record<string, string> = {};
  if (text[i] === '{') {
    i++;
    while (text[i] !== '}') {
      const ln = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(text.slice(i));
      if (!ln) throw new Error(`line ${line}: bad label at ${JSON.stringify(text.slice(i))}`);
      const label = ln[1]!;
      if (label in labels) throw new Error(`line ${line}: label ${label} twice`);
      i += ln[0].length;
      let value = '';
      for (;;) {
        const c = text[i];
        if (c === undefined) throw new Error(`line ${line}: unterminated label value`);
        if (c === '"') break;
        if (c === '\\') {
          const n = text[i + 1];
          if (n === '\\') value += '\\';
          else if (n === '"') value += '"';
          else if (n === 'n') value += '\n';
          else throw new Error(`line ${line}: bad escape \\${n}`);
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      i++; // closing quote
      labels[label] = value;
      if (text[i] === ',') i++;
      else if (text[i] !== '}') throw new Error(`line ${line}: expected , or } after label ${label}`);
    }
    i++;
  }
  if (text[i] !== ' ') throw new Error(`line ${line}: expected a space before the value`);
  const rest = text.slice(i + 1).split(' ');
  if (rest.length > 2 || (rest.length === 2 && !/^-?\d+$/.test(rest[1]!))) throw new Error(`line ${line}: bad value/timestamp ${JSON.stringify(text.slice(i + 1))}`);
  return { name, labels, value: parseValue(rest[0]!, line) };
}

/** The family a sample belongs to: histogram and summary samples carry suffixes. */
function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(sample);
  if (direct) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const f = families.get(sample.slice(0, -suffix.length));
    if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return f;
  }
  return undefined;
}

const seriesKey = (s: Sample) => `${s.name}{${Object.entries(s.labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;

function checkHistogram(f: Family) {
  const groups = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: bucket without le`);
      g.buckets.push([parseValue(le, 0), s.value]);
    } else if (s.name === `${f.name}_count`) g.count = s.value;
    else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else throw new Error(`${f.name}: unexpected sample ${s.name}`);
  }
  for (const g of groups.values()) {
    if (g.count === undefined || g.sum === undefined) throw new Error(`${f.name}: a series lacks _count or _sum`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) throw new Error(`${f.name}: le not increasing`);
      if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${f.name}: buckets not cumulative`);
    }
    const last = g.buckets.at(-1);
    if (!last || last[0] !== Infinity || last[1] !== g.count) throw new Error(`${f.name}: +Inf bucket missing or not equal to _count`);
  }
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  const closed = new Set<string>();
  let current: Family | null = null;
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('exposition must end with a newline');
  lines.pop();
  lines.forEach((raw, idx) => {
    const line = idx + 1;
    if (raw.trim() === '') return; // the format ignores empty lines (prom-client separates families with them)
    if (raw.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(raw);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!METRIC_NAME.test(name)) throw new Error(`line ${line}: bad metric name ${name}`);
      if (closed.has(name)) throw new Error(`line ${line}: family ${name} appears twice`);
      let f = families.get(name);
      if (!f) {
        if (current && current.name !== name) closed.add(current.name);
        f = { name, type: 'untyped', help: '', samples: [] };
        families.set(name, f);
      } else if (f.samples.length) throw new Error(`line ${line}: ${kind} of ${name} after its samples`);
      current = f;
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`line ${line}: unknown type ${rest}`);
        f.type = rest as Family['type'];
      } else f.help = rest;
      return;
    }
    const sample = parseSample(raw, line);
    for (const k of Object.keys(sample.labels)) if (!LABEL_NAME.test(k) || k.startsWith('__')) throw new Error(`line ${line}: bad label name ${k}`);
    const f = familyOf(sample.name, families);
    if (!f) throw new Error(`line ${line}: sample ${sample.name} has no TYPE line before it`);
    if (f !== current) throw new Error(`line ${line}: sample of ${f.name} outside its family's block`);
    const key = seriesKey(sample);
    if (seen.has(key)) throw new Error(`line ${line}: duplicate series ${key}`);
    seen.add(key);
    if (f.type === 'counter' && !(sample.value >= 0)) throw new Error(`line ${line}: counter ${sample.name} is ${sample.value}`);
    f.samples.push(sample);
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** The sum over the series of `sample` whose labels include `labels`; 0 when there is none (a counter never incremented so). */
export function valueOf(families: Map<string, Family>, sample: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === sample && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
    }
  }
  return sum;
}

/** Every series (name plus label set) in the exposition. */
export function seriesOf(families: Map<string, Family>): string[] {
  return [...families.values()].flatMap((f) => f.samples.map(seriesKey));
}
