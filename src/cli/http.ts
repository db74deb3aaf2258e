// The REST client: Node's fetch, the bearer token, and one translation of
// every failure into a message that says what to do next.
import { apiBase, type Target } from './config.js';
import { CliError, EXIT } from './errors.js';

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

interface Issue {
  loc?: (string | number)[];
  msg?: string;
}

/** What a 404 means for this request: `no job <id>`. */
export interface NotFoundAs {
  what: string;
  id: string;
}

export interface RequestOptions {
  body?: unknown;
  form?: Record<string, string>;
  headers?: Record<string, string>;
  /** Statuses the caller handles itself (no error thrown). */
  accept?: number[];
  notFound?: NotFoundAs;
  /** Names for 422 fields (`working_dir` → `--cwd`). */
  fields?: Record<string, string>;
  signal?: AbortSignal;
}

function networkDetail(err: unknown): string {
  const name = (err as Error).name;
  if (name === 'TimeoutError' || name === 'AbortError') return 'no answer in time';
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

export class Api {
  readonly base: string;

  constructor(
    readonly target: Target,
  ) {
    this.base = apiBase(target.server);
  }

  unreachable(err: unknown): CliError {
    return new CliError(`cannot reach ${this.target.server} (${networkDetail(err)}): is it running? (--server / JOBRUNNER_SERVER)`, EXIT.unreachable);
  }

  /** Sends a request; resolves with any status in `accept` or 2xx, throws a CliError for the rest. */
  async raw(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
    if (this.target.token) headers.authorization = `Bearer ${this.target.token}`;
    let body: string | undefined;
    if (opts.form) {
      body = new URLSearchParams(opts.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(this.base + path, { method, headers, body, signal: opts.signal });
    } catch (err) {
      throw this.unreachable(err);
    }
    if (res.ok || opts.accept?.includes(res.status)) return res;
    throw await this.failure(res, opts, path);
  }

  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<ApiResponse<T>> {
    const res = await this.raw(method, path, opts);
    const text = await res.text();
    const body = text && (res.headers.get('content-type') ?? '').includes('json') ? (JSON.parse(text) as T) : (text as T);
    return { status: res.status, body, headers: res.headers };
  }

  get = <T = unknown>(path: string, opts?: RequestOptions) => this.request<T>('GET', path, opts).then((r) => r.body);
  post = <T = unknown>(path: string, body?: unknown, opts?: RequestOptions) => this.request<T>('POST', path, { ...opts, body }).then((r) => r.body);

  /** The CliError for an answer that is not a success. */
  async failure(res: Response, opts: RequestOptions, path: string): Promise<CliError> {
    const text = await res.text().catch(() => '');
    let detail: unknown = text;
    try {
      detail = (JSON.parse(text) as { detail?: unknown }).detail ?? text;
    } catch {
      // not JSON: keep the text
    }
    const said = typeof detail === 'string' ? detail : JSON.stringify(detail);
    switch (res.status) {
      case 401: {
        if (!this.target.token) return new CliError('not logged in: run `jobrunner login` (or set JOBRUNNER_TOKEN)', EXIT.auth);
        const why = /error_description="([^"]*)"/.exec(res.headers.get('www-authenticate') ?? '')?.[1];
        return new CliError(`not logged in or session expired${why ? ` (${why})` : ''}: run \`jobrunner login\``, EXIT.auth);
      }
      case 403:
        return new CliError(`not allowed: ${said}`, EXIT.auth);
      case 404:
        return new CliError(opts.notFound ? `no ${opts.notFound.what} ${opts.notFound.id}` : `${this.base}${path}: not found (${said}); is ${this.target.server} a jobrunner server?`, EXIT.notFound);
      case 422:
        return new CliError(`invalid input:\n${issueLines(detail, opts.fields ?? {})}`);
      case 429: {
        const after = res.headers.get('retry-after');
        return new CliError(`${said}${after ? ` (retry after ${after} s)` : ''}`);
      }
      // Up but unable to serve for now (its database does not answer, or a proxy's upstream is down): like unreachable, which waits and follows retry.
      case 502:
      case 503:
      case 504:
        return new CliError(`${this.target.server} is unavailable (${res.status}${said ? `: ${said}` : ''})`, EXIT.unreachable);
      default:
        if (res.status >= 500) return new CliError(`the server failed (${res.status} ${said}): see its log`);
        return new CliError(said || `HTTP ${res.status}`);
    }
  }
}

/** One line per 422 issue, naming the field as the user wrote it. */
function issueLines(detail: unknown, fields: Record<string, string>): string {
  if (!Array.isArray(detail)) return `  ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`;
  return (detail as Issue[])
    .map((i) => {
      const loc = (i.loc ?? []).filter((p, n) => !(n === 0 && (p === 'body' || p === 'query' || p === 'path')));
      const key = String(loc[0] ?? '');
      const name = fields[key] ?? loc.join('.');
      return `  ${name ? `${name}: ` : ''}${i.msg ?? JSON.stringify(i)}`;
    })
    .join('\n');
}
