// Passwords never come from the command line (they would show in `ps` and
// shell history): from an environment variable, a prompt without echo on a
// terminal, or the first line of stdin when it is not a terminal.
import { CliError } from './errors.js';

/** Reads a line from the terminal without echoing it; Ctrl-C aborts, Ctrl-D ends. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new CliError('interrupted', 130));
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

/** The first line of stdin (at most 4 KiB read). */
async function firstLineOfStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += (chunk as Buffer).toString('utf8');
    if (text.includes('\n') || text.length > 4096) break;
  }
  return text.split(/\r?\n/)[0]!;
}

export interface PasswordSource {
  /** The environment variable to read first. */
  env: string;
  prompt: string;
  /** Whether a non-terminal stdin may be read. */
  stdin: boolean;
}

/** The password, or null when none is available (empty input counts as none). */
export async function readPassword(src: PasswordSource): Promise<string | null> {
  const fromEnv = process.env[src.env];
  if (fromEnv) return fromEnv;
  if (process.stdin.isTTY) return (await promptHidden(src.prompt)) || null;
  if (!src.stdin) return null;
  return (await firstLineOfStdin()) || null;
}
