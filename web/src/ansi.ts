// Terminal output to styled text segments. Only SGR sequences (ESC [ … m)
// change how text looks; every other escape or control character is made
// visible as text (in caret notation: ESC as ^[, BEL as ^G), so no
// output can clear the view, set a title, reach the clipboard (OSC 52) or
// inject markup: segments become text nodes, never HTML.

export interface Style {
  /** 0–255 palette index, or a '#rrggbb' colour. */
  fg: number | string | null;
  bg: number | string | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  inverse: boolean;
}

export interface Segment {
  text: string;
  style: Style | null;
  /** A neutralised escape or control character (shown dimmed). */
  escaped?: boolean;
}

export const PLAIN: Style = Object.freeze({ fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false });

const ESC = '\x1b';

function isPlain(s: Style): boolean {
  return s.fg === null && s.bg === null && !s.bold && !s.dim && !s.italic && !s.underline && !s.inverse;
}

/** The 256-colour palette entry `n` as '#rrggbb' (16–255; 0–15 are themed classes). */
export function paletteColour(n: number): string {
  const hex = (v: number) => v.toString(16).padStart(2, '0');
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `#${hex(v)}${hex(v)}${hex(v)}`;
  }
  const i = n - 16;
  const level = (c: number) => (c === 0 ? 0 : 55 + c * 40);
  return `#${hex(level(Math.floor(i / 36)))}${hex(level(Math.floor(i / 6) % 6))}${hex(level(i % 6))}`;
}

/** Applies one SGR parameter list to `s`, returning a new style (or `s` when nothing changed). */
export function applySgr(s: Style, params: string): Style {
  const codes = params === '' ? [0] : params.split(/[;:]/).map((p) => (p === '' ? 0 : Number(p)));
  const next: Style = { ...s };
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (c === 0) Object.assign(next, PLAIN);
    else if (c === 1) next.bold = true;
    else if (c === 2) next.dim = true;
    else if (c === 3) next.italic = true;
    else if (c === 4) next.underline = true;
    else if (c === 7) next.inverse = true;
    else if (c === 22) next.bold = next.dim = false;
    else if (c === 23) next.italic = false;
    else if (c === 24) next.underline = false;
    else if (c === 27) next.inverse = false;
    else if (c >= 30 && c <= 37) next.fg = c - 30;
    else if (c === 39) next.fg = null;
    else if (c >= 40 && c <= 47) next.bg = c - 40;
    else if (c === 49) next.bg = null;
    else if (c >= 90 && c <= 97) next.fg = c - 90 + 8;
    else if (c >= 100 && c <= 107) next.bg = c - 100 + 8;
    else if (c === 38 || c === 48) {
      let colour: number | string | null = null;
      if (codes[i + 1] === 5 && i + 2 < codes.length) {
        const n = codes[i + 2]!;
        if (n >= 0 && n <= 255) colour = n;
        i += 2;
      } else if (codes[i + 1] === 2 && i + 4 < codes.length) {
        const [r, g, b] = codes.slice(i + 2, i + 5).map((v) => Math.max(0, Math.min(255, v | 0)));
        colour = `#${[r!, g!, b!].map((v) => v.toString(16).padStart(2, '0')).join('')}`;
        i += 4;
      } else break; // malformed: ignore the rest, as terminals do
      if (c === 38) next.fg = colour;
      else next.bg = colour;
    }
    // Other codes (blink, fonts, …) are ignored.
  }
  if (isPlain(next)) return PLAIN;
  return next;
}

/**
 * A visible stand-in for a control character, in caret notation as `cat -v`
 * writes it (ESC is ^[, BEL ^G, DEL ^?): plain ASCII, so every font shows it.
 */
function picture(ch: string): string {
  const code = ch.charCodeAt(0);
  if (code < 0x20) return '^' + String.fromCharCode(code + 64);
  if (code === 0x7f) return '^?';
  return `\\x${code.toString(16).padStart(2, '0')}`; // C1 controls
}

// CSI: ESC [ params intermediates final; OSC: ESC ] … (BEL | ESC \); other: ESC + one char.
const CSI = /^\x1b\[([0-?]*)([ -/]*)([@-~])/;
const OSC = /^\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?/;
// Controls to neutralise: C0 but tab, DEL, C1.
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;

/**
 * Splits one line into segments starting from `style`; returns them with the
 * style in force at the end (the next line of the same stream starts there).
 */
export function parseLine(text: string, style: Style = PLAIN): { segments: Segment[]; end: Style } {
  const segments: Segment[] = [];
  let current = style;
  let plain = '';
  const flush = () => {
    if (plain) segments.push({ text: plain, style: current === PLAIN ? null : current });
    plain = '';
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === ESC) {
      const rest = text.slice(i, i + 512);
      const csi = CSI.exec(rest);
      if (csi) {
        if (csi[3] === 'm' && csi[2] === '' && !/[<=>?]/.test(csi[1]!)) {
          flush();
          current = applySgr(current, csi[1]!);
        } else {
          flush();
          segments.push({ text: '^[' + csi[0].slice(1), style: null, escaped: true });
        }
        i += csi[0].length;
        continue;
      }
      const osc = OSC.exec(rest);
      const seq = osc ? osc[0] : text.slice(i, i + 2);
      flush();
      segments.push({ text: [...seq].map((c) => (CONTROL.test(c) ? picture(c) : c)).join(''), style: null, escaped: true });
      i += seq.length;
      continue;
    }
    if (CONTROL.test(ch)) {
      flush();
      segments.push({ text: picture(ch), style: null, escaped: true });
      i++;
      continue;
    }
    plain += ch;
    i++;
  }
  flush();
  return { segments, end: current };
}

/** The style at the end of `text` (cheap when it holds no escape). */
export function endStyle(text: string, style: Style): Style {
  if (text.indexOf(ESC) < 0) return style;
  let current = style;
  const re = /\x1b\[([0-?]*)([ -/]*)([@-~])/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[3] === 'm' && m[2] === '' && !/[<=>?]/.test(m[1]!)) current = applySgr(current, m[1]!);
  }
  return current;
}

/** Removes escape sequences (for search and plain-text copies). */
export function stripAnsi(text: string): string {
  return text.indexOf(ESC) < 0 ? text : text.replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b./g, '');
}
