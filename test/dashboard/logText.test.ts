// The log viewer's model, without a browser: SGR parsing (and every other
// escape made visible), chunks of two streams turned into lines, and which
// rows are drawn where.
import { describe, expect, it } from 'vitest';
import { applySgr, endStyle, parseLine, PLAIN, stripAnsi } from '../../web/src/ansi.js';
import { LogBuffer, STDERR, STDOUT } from '../../web/src/logBuffer.js';
import { layout, ROW_HEIGHT } from '../../web/src/logLayout.js';

describe('ANSI text', () => {
  it('applies SGR colours and attributes, 16, 256 and true colour, and resets', () => {
    const { segments, end } = parseLine('\x1b[1;31mred\x1b[22m thin\x1b[0m plain \x1b[38;5;208mor\x1b[48;2;1;2;3mbg\x1b[39;49m');
    expect(segments.map((s) => s.text)).toEqual(['red', ' thin', ' plain ', 'or', 'bg']);
    expect(segments[0]!.style).toMatchObject({ fg: 1, bold: true });
    expect(segments[1]!.style).toMatchObject({ fg: 1, bold: false });
    expect(segments[2]!.style).toBeNull();
    expect(segments[3]!.style).toMatchObject({ fg: 208 });
    expect(segments[4]!.style).toMatchObject({ fg: 208, bg: '#010203' });
    expect(end).toBe(PLAIN);
    expect(applySgr(PLAIN, '')).toBe(PLAIN);
  });

  it('shows every other escape and control character as text, in caret notation', () => {
    const { segments } = parseLine('a\x1b]52;c;SGVsbG8=\x07b\x1b[2Jc\x1b[?25ld\x07\x00\x7f\x9b');
    expect(segments.map((s) => s.text).join('')).toBe('a^[]52;c;SGVsbG8=^Gb^[[2Jc^[[?25ld^G^@^?\\x9b');
    expect(segments.filter((s) => s.escaped).map((s) => s.text)).toEqual(['^[]52;c;SGVsbG8=^G', '^[[2J', '^[[?25l', '^G', '^@', '^?', '\\x9b']);
    // A lone ESC at the end, an unterminated OSC: shown, never swallowing what follows on later lines.
    expect(parseLine('x\x1b').segments.map((s) => s.text).join('')).toBe('x^[');
    expect(parseLine('\x1b]0;title').segments.map((s) => s.text).join('')).toBe('^[]0;title');
  });

  it('carries the style in force to the next line; strips escapes for search and copy', () => {
    expect(endStyle('\x1b[32mgreen, no reset', PLAIN)).toMatchObject({ fg: 2 });
    expect(parseLine('still green', endStyle('\x1b[32m', PLAIN)).segments[0]!.style).toMatchObject({ fg: 2 });
    expect(stripAnsi('\x1b[1mbold\x1b[0m \x1b]52;c;x\x07done')).toBe('bold done');
  });
});

describe('log lines', () => {
  it('interleaves streams where each line began, joins split chunks, drops repeated seqs', () => {
    const b = new LogBuffer();
    expect(b.append(1, STDOUT, 'out one\nout tw')).toBe(true);
    b.append(2, STDERR, 'err one\n');
    b.append(3, STDOUT, 'o\r\n');
    expect(b.append(3, STDOUT, 'duplicate\n')).toBe(false);
    expect(b.append(2, STDERR, 'older\n')).toBe(false);
    expect(b.lines.map((l) => [l.stream, l.text])).toEqual([
      [STDOUT, 'out one'],
      [STDOUT, 'out two'],
      [STDERR, 'err one'],
    ]);
    expect(b.lastSeq).toBe(3);
    expect(b.text()).toBe('out one\nout two\nerr one');
  });

  it('splits a line longer than a row into continuation rows, keeping its colour', () => {
    const b = new LogBuffer();
    b.append(1, STDOUT, '\x1b[31m' + 'x'.repeat(10_000) + '\n');
    expect(b.lines.length).toBe(3);
    expect(b.lines.map((l) => l.cont)).toEqual([false, true, true]);
    expect(b.lines[1]!.style).toMatchObject({ fg: 1 });
    expect(b.text()).toBe('\x1b[31m' + 'x'.repeat(10_000));
  });
});

describe('log layout', () => {
  it('draws only the rows around the view, at any length, and reaches the last line', () => {
    const short = layout(1000, 200 * ROW_HEIGHT, 640);
    expect(short.height).toBe(1000 * ROW_HEIGHT);
    expect(short.top(200)).toBe(200 * ROW_HEIGHT);
    expect(short.last - short.first).toBeLessThanOrEqual(32 + 40 + 1);
    // 10 million one-byte lines: taller than a browser allows, so the scroll range is compressed.
    const total = 10_000_000;
    const top = layout(total, 0, 640);
    expect(top.height).toBeLessThan(33_000_000);
    expect(top.first).toBe(0);
    const end = layout(total, top.height - 640, 640);
    expect(end.last).toBe(total);
    expect(end.last - end.first).toBeLessThanOrEqual(32 + 40 + 1);
    // The last line sits at the bottom of the view.
    expect(end.top(total - 1) + ROW_HEIGHT).toBeCloseTo(top.height, 0);
  });
});
