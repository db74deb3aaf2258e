// A job's output, live: the jobLog subscription from seq 0, resumed after a
// dropped socket from the last seq shown (the server sends what follows it,
// so nothing is missed or repeated). Only the rows in view (plus a margin)
// are in the DOM, at a fixed row height, so a 10 MiB log costs the same to
// draw as a short one and streaming never moves the layout.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { isSocketUp, onSocketState, subscribe } from './api.js';
import { paletteColour, parseLine, stripAnsi, type Segment, type Style } from './ansi.js';
import { LogBuffer, STDERR, STDOUT, type Line } from './logBuffer.js';
import { layout, ROW_HEIGHT } from './logLayout.js';

const LOG = 'subscription ($id: ID!, $after: Int) { jobLog(id: $id, after: $after) { seq stream data } }';

type Phase = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'error';

function classOf(style: Style): string {
  const c: string[] = [];
  let fg = style.fg;
  let bg = style.bg;
  if (style.inverse) {
    [fg, bg] = [bg, fg];
    c.push('inv');
  }
  if (typeof fg === 'number' && fg < 16) c.push(`fg${fg}`);
  if (typeof bg === 'number' && bg < 16) c.push(`bg${bg}`);
  if (style.bold) c.push('b');
  if (style.dim) c.push('dim');
  if (style.italic) c.push('i');
  if (style.underline) c.push('u');
  return c.join(' ');
}

function colour(v: number | string | null): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && v >= 16) return paletteColour(v);
  return undefined;
}

function SegmentView({ seg }: { seg: Segment }) {
  if (seg.escaped) return <span class="esc">{seg.text}</span>;
  if (!seg.style) return <>{seg.text}</>;
  const s = seg.style;
  const fg = colour(s.inverse ? s.bg : s.fg);
  const bg = colour(s.inverse ? s.fg : s.bg);
  return (
    <span class={classOf(s)} style={fg || bg ? { color: fg, backgroundColor: bg } : undefined}>
      {seg.text}
    </span>
  );
}

function Row({ line, index, top, current }: { line: Line; index: number; top: number; current: boolean }) {
  const { segments } = parseLine(line.text, line.style);
  return (
    <div class={`log-row${line.stream === STDERR ? ' stderr' : ''}${current ? ' match' : ''}`} style={{ top: `${top}px` }} data-line={index + 1}>
      <span class="ln" aria-hidden="true">
        {line.cont ? '↪' : index + 1}
      </span>
      <span class="mark" title={line.stream === STDERR ? 'stderr' : 'stdout'}>
        {line.stream === STDERR ? 'err' : 'out'}
      </span>
      <span class="txt">
        {segments.map((seg, i) => (
          <SegmentView key={i} seg={seg} />
        ))}
      </span>
    </div>
  );
}

export function LogView({ jobId, fileName, truncated }: { jobId: string; fileName: string; truncated: string[] }) {
  const buffer = useMemo(() => new LogBuffer(), [jobId]);
  const [, setVersion] = useState(0);
  const [phase, setPhase] = useState<Phase>('connecting');
  const [error, setError] = useState<string | null>(null);
  const [follow, setFollow] = useState(true);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(480);
  const [search, setSearch] = useState('');
  const [matches, setMatches] = useState<number[]>([]);
  const [matchAt, setMatchAt] = useState(-1);
  const [copied, setCopied] = useState('');
  const box = useRef<HTMLDivElement>(null);
  const followRef = useRef(true);
  followRef.current = follow;

  useEffect(() => {
    let frame = 0;
    const redraw = () => {
      if (!frame) frame = requestAnimationFrame(() => ((frame = 0), setVersion((v) => v + 1)));
    };
    setPhase('connecting');
    const stop = subscribe<{ jobLog: { seq: number; stream: 'STDOUT' | 'STDERR'; data: string } }>(LOG, () => ({ id: jobId, after: buffer.lastSeq }), {
      next: ({ jobLog: c }) => {
        setPhase('live');
        if (buffer.append(c.seq, c.stream === 'STDERR' ? STDERR : STDOUT, c.data)) redraw();
      },
      complete: () => {
        setPhase('ended');
        redraw();
      },
      error: (e) => {
        setPhase('error');
        setError(e.message);
      },
    });
    const offSocket = onSocketState((up) => setPhase((p) => (p === 'ended' || p === 'error' ? p : up ? 'live' : 'reconnecting')));
    if (isSocketUp()) setPhase('live');
    return () => {
      cancelAnimationFrame(frame);
      stop();
      offSocket();
    };
  }, [jobId]);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setViewport(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  const lines = buffer.lines;
  const total = lines.length;

  // Following: keep the newest line in view after every redraw.
  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow && el.scrollTop + el.clientHeight < el.scrollHeight) el.scrollTop = el.scrollHeight;
  });

  // Search runs over the whole buffer when the query settles.
  useEffect(() => {
    const q = search.trim().toLowerCase();
    const t = setTimeout(() => {
      if (!q) {
        setMatches([]);
        setMatchAt(-1);
        return;
      }
      const found: number[] = [];
      for (let i = 0; i < lines.length; i++) if (stripAnsi(lines[i]!.text).toLowerCase().includes(q)) found.push(i);
      setMatches(found);
      setMatchAt(found.length ? 0 : -1);
      if (found.length) reveal(found[0]!);
    }, 250);
    return () => clearTimeout(t);
  }, [search]);

  function reveal(line: number) {
    const el = box.current;
    if (!el) return;
    setFollow(false);
    el.scrollTop = Math.max(0, line * ROW_HEIGHT - el.clientHeight / 2) / layout(lines.length, el.scrollTop, el.clientHeight).scale;
  }
  function step(delta: number) {
    if (!matches.length) return;
    const at = (matchAt + delta + matches.length) % matches.length;
    setMatchAt(at);
    reveal(matches[at]!);
  }
  function jumpToEnd() {
    setFollow(true);
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }
  function onScroll() {
    const el = box.current!;
    setScrollTop(el.scrollTop);
    const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - ROW_HEIGHT;
    if (atEnd !== followRef.current) setFollow(atEnd);
  }
  function onKey(e: KeyboardEvent) {
    if (e.key === 'End') {
      e.preventDefault();
      jumpToEnd();
    } else if (e.key === 'Home') {
      e.preventDefault();
      setFollow(false);
      box.current!.scrollTop = 0;
    }
  }
  async function copy() {
    try {
      await navigator.clipboard.writeText(stripAnsi(buffer.text()));
      setCopied('Copied');
    } catch {
      setCopied('Copy refused by the browser: use Download');
    }
    setTimeout(() => setCopied(''), 2500);
  }
  function download() {
    const url = URL.createObjectURL(new Blob([buffer.text()], { type: 'text/plain;charset=utf-8' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = fileName;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  const { first, last, height, top } = layout(total, scrollTop, viewport);
  const current = matchAt >= 0 ? matches[matchAt] : -1;
  const rows = [];
  for (let i = first; i < last; i++) rows.push(<Row key={i} line={lines[i]!} index={i} top={top(i)} current={i === current} />);

  const phaseText: Record<Phase, string> = {
    connecting: 'connecting…',
    live: 'live',
    reconnecting: 'reconnecting…',
    ended: 'complete',
    error: error ?? 'error',
  };
  return (
    <section class="log" aria-labelledby="log-title">
      <div class="log-toolbar">
        <h2 id="log-title">Output</h2>
        <span class={`log-phase phase-${phase}`} role="status">
          {phaseText[phase]}
        </span>
        <span class="log-size">
          {total.toLocaleString()} lines · {(buffer.bytes / 1024).toFixed(1)} KiB
        </span>
        <div class="log-actions">
          {follow && phase !== 'ended' ? (
            <button type="button" onClick={() => setFollow(false)}>
              Pause follow
            </button>
          ) : (
            <button type="button" onClick={jumpToEnd}>
              Jump to end
            </button>
          )}
          <button type="button" onClick={copy}>
            Copy
          </button>
          <button type="button" onClick={download}>
            Download
          </button>
          <span class="copied" aria-live="polite">
            {copied}
          </span>
        </div>
        <div class="log-search" role="search">
          <input
            type="search"
            aria-label="Search the output"
            placeholder="Search output"
            value={search}
            onInput={(e) => setSearch(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter') {
                e.preventDefault();
                step(e.shiftKey ? -1 : 1);
              }
            }}
          />
          <span class="match-count">{search.trim() ? (matches.length ? `${matchAt + 1} / ${matches.length}` : 'no match') : ''}</span>
          <button type="button" onClick={() => step(-1)} disabled={!matches.length} aria-label="Previous match">
            ↑
          </button>
          <button type="button" onClick={() => step(1)} disabled={!matches.length} aria-label="Next match">
            ↓
          </button>
        </div>
      </div>
      <div class="log-box" ref={box} onScroll={onScroll} tabIndex={0} role="log" aria-label="Job output" onKeyDown={onKey}>
        <div class="log-inner" style={{ height: `${height}px` }}>
          {rows}
        </div>
        {total === 0 && <p class="log-empty">{phase === 'ended' ? 'No output.' : 'Waiting for output…'}</p>}
      </div>
      {truncated.length > 0 && <p class="notice">Output was cut at MAX_LOG_BYTES: {truncated.join(', ')} truncated.</p>}
    </section>
  );
}
