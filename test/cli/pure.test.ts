// The CLI's pure pieces on their own: SSE parsing, the job exit status,
// command-line parsing.
import { describe, expect, it } from 'vitest';
import { jobExitCode } from '../../src/cli/jobExit.js';
import { parseCommandLine } from '../../src/cli/parse.js';
import { sseEvents, type SseEvent } from '../../src/cli/sse.js';

async function parse(chunks: string[]): Promise<SseEvent[]> {
  async function* body() {
    for (const c of chunks) yield new TextEncoder().encode(c);
  }
  const out: SseEvent[] = [];
  for await (const ev of sseEvents(body())) out.push(ev);
  return out;
}

describe('sseEvents', () => {
  it('joins data lines with LF, keeps the last id, skips comments, and yields only complete events', async () => {
    const events = await parse([': keep-alive\n\nid: 1\nevent: stdout\ndata: a\ndata: b\ndata: \n\n', 'id: 2\nevent: std', 'err\ndata:x\n\nid: 3\nevent: stdout\ndata: cut off']);
    expect(events).toEqual([
      { id: '1', event: 'stdout', data: 'a\nb\n' },
      { id: '2', event: 'stderr', data: 'x' },
    ]);
  });

  it('takes CRLF and CR line ends, a CRLF split across chunks included; multi-byte characters split across chunks', async () => {
    const bytes = new TextEncoder().encode('id: 5\r\nevent: stdout\rdata: é€\r');
    const events: SseEvent[] = [];
    async function* body() {
      for (const b of bytes) yield new Uint8Array([b]);
      yield new TextEncoder().encode('\n\r\n');
    }
    for await (const ev of sseEvents(body())) events.push(ev);
    expect(events).toEqual([{ id: '5', event: 'stdout', data: 'é€' }]);
  });
});

describe('jobExitCode', () => {
  const job = (status: string, exit_code: number | null, error: string | null = null) => ({ status, exit_code, error });
  it.each([
    [job('success', 0), 0],
    [job('failed', 3), 3],
    [job('failed', null, 'killed by signal SIGKILL'), 137],
    [job('failed', null, 'killed by signal SIGTERM'), 143],
    [job('failed', null, 'timed out after 5s'), 124],
    [job('failed', null, 'spawn nosuch: ENOENT (not found in PATH=/usr/bin)'), 127],
    [job('failed', null, 'spawn /etc/passwd: EACCES'), 126],
    [job('failed', null, 'memory limit reached (512 MB)'), 125],
    [job('failed', 300), 125],
    [job('failed', -1), 125],
    [job('canceled', null, 'canceled'), 130],
  ])('%j → %i', (j, code) => expect(jobExitCode(j)).toBe(code));
});

describe('parseCommandLine', () => {
  const run = (argv: string[]) => {
    const inv = parseCommandLine(argv);
    if (inv.kind !== 'run') throw new Error(`not a run: ${inv.kind}`);
    return { name: inv.command.name, values: inv.values, positionals: inv.positionals };
  };

  it('submit: options end at the program or at --', () => {
    expect(run(['submit', '--name', 'n', '--env', 'A=1', '--env', 'B=2', 'make', '-j4', '--name', 'x'])).toEqual({
      name: 'submit', values: { name: 'n', env: ['A=1', 'B=2'] }, positionals: ['make', '-j4', '--name', 'x'],
    });
    expect(run(['submit', '-f', '--', '-weird', 'arg']).positionals).toEqual(['-weird', 'arg']);
    expect(() => run(['submit', '--bogus', 'true'])).toThrow(/^unknown option "--bogus" for `submit`$/);
  });

  it('--server and --json may come before the command', () => {
    expect(run(['--server', 'http://h:1', '--json', 'batch', 'ls', '--name', 'x'])).toEqual({ name: 'batch ls', values: { server: 'http://h:1', json: true, name: 'x' }, positionals: [] });
    expect(run(['--server=http://h:1', 'submit', 'echo', '--json']).positionals).toEqual(['echo', '--json']);
    expect(() => parseCommandLine(['--json', 'login'])).toThrow(/unknown option "--json" for `login`/);
  });

  it('help forms', () => {
    expect(parseCommandLine([])).toEqual({ kind: 'none' });
    expect(parseCommandLine(['help'])).toEqual({ kind: 'help', text: 'main' });
    expect(parseCommandLine(['users', '--help'])).toEqual({ kind: 'help', text: { group: 'users' } });
    expect(parseCommandLine(['users', 'create', '-h'])).toMatchObject({ kind: 'help', text: { name: 'users create' } });
    expect(parseCommandLine(['submit', '--', 'cmd', '--help'])).toMatchObject({ kind: 'run' });
  });
});
