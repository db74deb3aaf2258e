// A job's output as display lines: stdout and stderr interleaved in the order
// their chunks arrived (a line sits where its first byte came), each line
// tagged with its stream and the SGR style in force at its start. Lines
// longer than MAX_LINE are split into continuation rows so that no single
// row costs more than a screenful of text to draw.
import { endStyle, PLAIN, type Style } from './ansi.js';

export const STDOUT = 0;
export const STDERR = 1;
export type StreamId = typeof STDOUT | typeof STDERR;

export interface Line {
  stream: StreamId;
  text: string;
  style: Style;
  /** Continues the previous row of the same stream (a split long line). */
  cont: boolean;
}

const MAX_LINE = 4096;

export class LogBuffer {
  readonly lines: Line[] = [];
  /** Index of each stream's unterminated last line, or -1. */
  private open: [number, number] = [-1, -1];
  /** Style at the start of each stream's next line. */
  private style: [Style, Style] = [PLAIN, PLAIN];
  /** Highest seq appended: a resumed stream asks for what follows it. */
  lastSeq = 0;
  bytes = 0;

  /** Appends chunk `seq`; a chunk at or below lastSeq (already shown) is ignored and reported false. */
  append(seq: number, stream: StreamId, data: string): boolean {
    if (seq <= this.lastSeq) return false;
    this.lastSeq = seq;
    this.bytes += data.length;
    const parts = data.split('\n');
    for (let p = 0; p < parts.length; p++) {
      const part = parts[p]!;
      const last = p === parts.length - 1;
      if (part !== '' || !last) this.extend(stream, part);
      if (!last) this.close(stream);
    }
    return true;
  }

  private extend(stream: StreamId, text: string): void {
    let at = this.open[stream];
    if (at < 0) {
      at = this.lines.push({ stream, text: '', style: this.style[stream], cont: false }) - 1;
      this.open[stream] = at;
    }
    let line = this.lines[at]!;
    if (line.text.length + text.length <= MAX_LINE) {
      line.text += text;
      return;
    }
    const whole = line.text + text;
    line.text = whole.slice(0, MAX_LINE);
    for (let from = MAX_LINE; from < whole.length; from += MAX_LINE) {
      this.style[stream] = endStyle(line.text, line.style);
      line = { stream, text: whole.slice(from, from + MAX_LINE), style: this.style[stream], cont: true };
      this.open[stream] = this.lines.push(line) - 1;
    }
  }

  private close(stream: StreamId): void {
    const at = this.open[stream];
    if (at < 0) {
      this.lines.push({ stream, text: '', style: this.style[stream], cont: false });
      return;
    }
    const line = this.lines[at]!;
    if (line.text.endsWith('\r')) line.text = line.text.slice(0, -1);
    this.style[stream] = endStyle(line.text, line.style);
    this.open[stream] = -1;
  }

  /** The output as text, one row per line (escape sequences kept). */
  text(): string {
    const parts: string[] = [];
    this.lines.forEach((l, i) => parts.push(i === 0 || l.cont ? l.text : '\n' + l.text));
    return parts.join('');
  }
}
