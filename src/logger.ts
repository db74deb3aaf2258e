// Logger with scopes (`log.scope({ jobId })`): JSON lines for machines, or one
// readable line per event for a person at a terminal (LOG_FORMAT; `auto`
// picks by whether stdout is a TTY). Secrets never reach it: callers log ids
// and outcomes, not request bodies or environments.
import type { LogFormat, LogLevel } from './config.js';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  scope(fields: Record<string, unknown>): Logger;
}

type Render = (level: LogLevel, msg: string, fields: Record<string, unknown>) => string;

const errorJson = (_k: string, v: unknown) => (v instanceof Error ? { message: v.message, stack: v.stack } : v);

const json: Render = (level, msg, fields) => JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields }, errorJson);

const COLOURS: Record<LogLevel, string> = { debug: '\x1b[2m', info: '\x1b[36m', warn: '\x1b[33m', error: '\x1b[31m' };

/** `12:00:00.123 INFO  listening url=http://… database=sqlite`; values that need it are quoted. */
function text(colour: boolean): Render {
  return (level, msg, fields) => {
    const time = new Date().toISOString().slice(11, 23);
    const tag = level.toUpperCase().padEnd(5);
    const pairs = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => {
        const value = v instanceof Error ? v.message : typeof v === 'string' ? v : String(JSON.stringify(v));
        return `${k}=${/^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`;
      });
    const stack = Object.values(fields).find((v): v is Error => v instanceof Error)?.stack;
    const line = `${time} ${colour ? `${COLOURS[level]}${tag}\x1b[0m` : tag} ${msg}${pairs.length ? ' ' + pairs.join(' ') : ''}`;
    return level === 'error' && stack ? `${line}\n${stack}` : line;
  };
}

export interface LogOutput {
  /** `auto`: a readable line at a terminal, JSON lines anywhere else. */
  format: LogFormat;
  /** Colours the level of readable lines when stdout is a terminal (NO_COLOR unset). */
  colour: boolean;
}

function pick({ format, colour }: LogOutput): Render {
  const tty = Boolean(process.stdout.isTTY);
  if (format === 'json' || (format === 'auto' && !tty)) return json;
  return text(colour && tty);
}

export function createLogger(level: LogLevel = 'info', output: LogOutput = { format: 'json', colour: false }): Logger {
  return build(ORDER[level], pick(output), {});
}

function build(min: number, render: Render, base: Record<string, unknown>): Logger {
  const emit = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    (lvl === 'error' || lvl === 'warn' ? process.stderr : process.stdout).write(render(lvl, msg, { ...base, ...fields }) + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    scope: (fields) => build(min, render, { ...base, ...fields }),
  };
}
