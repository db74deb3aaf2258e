// The YAML that deploy/compose.yaml is written in, and nothing more: block
// mappings, block lists of scalars, JSON-style flow lists, plain and
// double-quoted scalars, whole-line comments. Anything else (anchors, tags,
// multi-line scalars, trailing comments, tabs) is an error, so the file stays
// readable by this parser and by every Compose implementation alike.

export type Yaml = string | null | Yaml[] | { [key: string]: Yaml };

interface Line {
  n: number;
  indent: number;
  text: string;
}

function scalar(raw: string, n: number): Yaml {
  const v = raw.trim();
  if (v.startsWith('"') || v.startsWith('[')) {
    try {
      return JSON.parse(v) as Yaml;
    } catch {
      throw new Error(`line ${n}: not a JSON-style scalar or list: ${v}`);
    }
  }
  if (/^['{&*!|>%@`]/.test(v) || / #/.test(v) || v.includes(': ')) throw new Error(`line ${n}: outside the supported YAML subset: ${v}`);
  return v;
}

export function parseYamlSubset(text: string): Yaml {
  if (text.includes('\t')) throw new Error('tabs are not allowed');
  const lines: Line[] = text
    .split('\n')
    .map((raw, i) => ({ n: i + 1, indent: raw.length - raw.trimStart().length, text: raw.trim() }))
    .filter((l) => l.text !== '' && !l.text.startsWith('#'));
  let i = 0;

  function block(indent: number): Yaml {
    return lines[i]!.text.startsWith('- ') ? list(indent) : map(indent);
  }

  function list(indent: number): Yaml[] {
    const out: Yaml[] = [];
    while (i < lines.length && lines[i]!.indent === indent && lines[i]!.text.startsWith('- ')) {
      out.push(scalar(lines[i]!.text.slice(2), lines[i]!.n));
      i++;
    }
    return out;
  }

  function map(indent: number): { [key: string]: Yaml } {
    const out: { [key: string]: Yaml } = {};
    while (i < lines.length && lines[i]!.indent === indent) {
      const line = lines[i]!;
      const m = /^([A-Za-z0-9_.-]+):(?: (.*))?$/.exec(line.text);
      if (!m) throw new Error(`line ${line.n}: expected "key:" or "key: value", got ${line.text}`);
      const key = m[1]!;
      if (key in out) throw new Error(`line ${line.n}: duplicate key ${key}`);
      i++;
      if (m[2] !== undefined && m[2].trim() !== '') out[key] = scalar(m[2], line.n);
      else if (i < lines.length && lines[i]!.indent > indent) out[key] = block(lines[i]!.indent);
      else out[key] = null;
    }
    if (i < lines.length && lines[i]!.indent > indent) throw new Error(`line ${lines[i]!.n}: unexpected indentation`);
    return out;
  }

  const doc = map(0);
  if (i < lines.length) throw new Error(`line ${lines[i]!.n}: unexpected content`);
  return doc;
}
