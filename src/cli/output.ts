// What the CLI prints: JSON for scripts, aligned tables for people, colour
// and a live status line only on a terminal (and never with NO_COLOR).
import { once } from 'node:events';

export const isTty = (stream: NodeJS.WriteStream = process.stdout) => stream.isTTY === true;
const useColor = (stream: NodeJS.WriteStream = process.stdout) => isTty(stream) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';

const CODES = { red: 31, green: 32, yellow: 33, blue: 34, gray: 90, bold: 1 } as const;
export function paint(text: string, color: keyof typeof CODES, stream: NodeJS.WriteStream = process.stdout): string {
  return useColor(stream) ? `\x1b[${CODES[color]}m${text}\x1b[0m` : text;
}

const STATUS_COLOR: Record<string, keyof typeof CODES> = { success: 'green', failed: 'red', canceled: 'yellow', running: 'blue', pending: 'gray' };
export const statusText = (status: string) => (STATUS_COLOR[status] ? paint(status, STATUS_COLOR[status]!) : status);

/** Writes and waits while the stream is full, so a slow reader holds back the source instead of memory filling. */
export async function write(stream: NodeJS.WritableStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

const ANSI = /\x1b\[[0-9;]*m/g;
const width = (s: string) => s.replace(ANSI, '').length;

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const all = [header.map((h) => paint(h, 'bold')), ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => width(r[c] ?? ''))));
  return all.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell + ' '.repeat(widths[c]! - width(cell)))).join('  ').trimEnd()).join('\n') + '\n';
}

/** `key: value` lines, keys aligned. */
export function fields(pairs: [string, string | number | null | undefined][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.filter(([, v]) => v !== undefined).map(([k, v]) => `${(k + ':').padEnd(w + 1)} ${v ?? '-'}`).join('\n') + '\n';
}

/** A local time to the second, or '-'. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function duration(fromIso: string | null, toIso: string | null): string {
  if (!fromIso) return '-';
  const ms = (toIso ? Date.parse(toIso) : Date.now()) - Date.parse(fromIso);
  if (ms < 1000) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** One line rewritten in place on a terminal (stdout); a no-op elsewhere. */
export function statusLine(stream: NodeJS.WriteStream = process.stdout) {
  const on = isTty(stream);
  let shown = false;
  return {
    show(text: string) {
      if (!on) return;
      stream.write(`\r\x1b[2K${text}`);
      shown = true;
    },
    clear() {
      if (on && shown) stream.write('\r\x1b[2K');
      shown = false;
    },
  };
}
