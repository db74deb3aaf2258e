// Every command of the `jobrunner` executable, as data: the top-level help,
// each command's --help, argument parsing (parse.ts) and the shell
// completions (completion.ts) are all made from this table.

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's placeholder in the help (`URL`, `N`). */
  value?: string;
  help: string;
}

export interface CommandSpec {
  /** `ls`, or `batch submit` for a subcommand. */
  name: string;
  /** What follows the name in the synopsis: `ID`, `[options] -- CMD [ARGS...]`. */
  args: string;
  summary: string;
  /** Paragraphs after the synopsis in the command's --help. */
  details?: string;
  options: Record<string, OptionSpec>;
  /** How many positionals the command takes. */
  positionals: [min: number, max: number];
  /** Client commands talk to a server; the others run one or use the database. */
  client: boolean;
  /** Options end at the first positional, which starts a command line of its own (submit). */
  commandLine?: true;
}

const HELP: OptionSpec = { type: 'boolean', short: 'h', help: 'this help' };
const SERVER: OptionSpec = { type: 'string', value: 'URL', help: 'the server (default: the one you logged in to; JOBRUNNER_SERVER; http://localhost:8000)' };
const JSON_OUT: OptionSpec = { type: 'boolean', help: 'print the API\'s JSON instead of a table' };

/** Options every client command takes; `json` is left out where there is nothing to print. */
const client = (options: Record<string, OptionSpec>, json = true): Record<string, OptionSpec> => ({
  ...options,
  ...(json && { json: JSON_OUT }),
  server: SERVER,
  help: HELP,
});

const RELAY =
  'Exit status: the job\'s exit code; 128+N if signal N killed it, 124 if it timed out, 126/127 if its program could not be run / was not found, 125 if it failed otherwise without an exit code, 130 if it was canceled.';

export const COMMANDS: CommandSpec[] = [
  {
    name: 'serve', args: '[--no-worker]', summary: 'API server with an in-process worker (--no-worker: API only, PostgreSQL)', client: false, positionals: [0, 0],
    options: { 'no-worker': { type: 'boolean', help: 'serve the API only; worker processes run the jobs (PostgreSQL only)' }, help: HELP },
    details: 'Configured by environment variables (README, "Configuration"). With SQLite, one server per DATA_DIR (a lock file holds its pid).',
  },
  { name: 'worker', args: '', summary: 'a worker without the API (PostgreSQL only)', client: false, positionals: [0, 0], options: { help: HELP } },
  { name: 'migrate', args: '', summary: 'apply the database migrations and exit', client: false, positionals: [0, 0], options: { help: HELP } },
  {
    name: 'create-user', args: '--email EMAIL [--role ROLE]', summary: 'create a user straight in the database', client: false, positionals: [0, 0],
    options: {
      email: { type: 'string', value: 'EMAIL', help: 'the new user\'s email (required)' },
      role: { type: 'string', value: 'ROLE', help: 'admin, operator (default) or viewer' },
      help: HELP,
    },
    details: 'The password comes from NEW_USER_PASSWORD, else a prompt on a terminal, else the first line of stdin. Uses DATABASE_URL / DATA_DIR like `serve`; no server needs to run.',
  },

  {
    name: 'login', args: '[--server URL] [--email EMAIL]', summary: 'log in and keep an API token in your config file', client: true, positionals: [0, 0],
    options: client({
      email: { type: 'string', value: 'EMAIL', help: 'your email (default: the last one used, else a prompt)' },
      session: { type: 'boolean', help: 'keep the session token (it expires with the session, JWT_TTL_SECONDS) instead of making an API token' },
      days: { type: 'string', value: 'N', help: 'days the API token lasts (1-365, default 30)' },
    }, false),
    details:
      'The password comes from JOBRUNNER_PASSWORD, else a prompt without echo on a terminal, else the first line of stdin. The login makes an API token named "jobrunner CLI on <host>" with every scope your role allows and ends the password session; the token, its id and the server go to the config file (mode 0600): JOBRUNNER_CONFIG, else $XDG_CONFIG_HOME/jobrunner/config.json, else ~/.config/jobrunner/config.json.',
  },
  {
    name: 'logout', args: '', summary: 'revoke the stored token and forget it', client: true, positionals: [0, 0], options: client({}, false),
    details: 'A session token is ended on the server. An API token can only be revoked by a password session: the password is taken from JOBRUNNER_PASSWORD or a prompt on a terminal; without one the token is forgotten here and stays valid until it expires (the message says how to revoke it).',
  },
  { name: 'whoami', args: '', summary: 'who you are on which server, your limit and jobs in flight', client: true, positionals: [0, 0], options: client({}) },
  {
    name: 'submit', args: '[options] [--] CMD [ARGS...]', summary: 'submit a job (--follow: stream its output; --wait: wait for it)', client: true, positionals: [1, Infinity], commandLine: true,
    options: client({
      name: { type: 'string', value: 'NAME', help: 'the job\'s name (default: the program\'s base name)' },
      cwd: { type: 'string', value: 'DIR', help: 'working directory on the server (made absolute here; must lie in JOBS_ALLOWED_ROOTS)' },
      env: { type: 'string', multiple: true, value: 'K=V', help: 'an environment variable for the job (repeatable)' },
      timeout: { type: 'string', value: 'SECONDS', help: 'kill the job after this long' },
      wait: { type: 'boolean', help: 'wait for the job to end and exit with its status' },
      follow: { type: 'boolean', short: 'f', help: 'stream its stdout and stderr here as they come, then exit with its status' },
    }),
    details:
      'Options end at the first argument that is not one, so `jobrunner submit make -j4` runs `make -j4`; put `--` before a command starting with `-`. The command runs without a shell: `submit -- sh -c \'echo $HOME\'` for one. Without --wait or --follow it prints the job id (--json: the job) and exits 0. Ctrl-C stops following or waiting; the job runs on (`jobrunner cancel ID`). --follow resumes after a dropped connection from the last chunk it received: no line is lost or repeated. ' + RELAY,
  },
  {
    name: 'ls', args: '[options]', summary: 'list jobs, newest first', client: true, positionals: [0, 0],
    options: client({
      status: { type: 'string', value: 'LIST', help: 'only these statuses, comma-separated (pending,running,success,failed,canceled)' },
      name: { type: 'string', value: 'TEXT', help: 'only jobs whose name contains TEXT' },
      limit: { type: 'string', value: 'N', help: 'at most N jobs (default 20, at most 1000)' },
    }),
    details: 'Operators see their own jobs; admins and viewers everyone\'s.',
  },
  { name: 'show', args: 'ID', summary: 'one job: command, status, exit code, times, limits', client: true, positionals: [1, 1], options: client({}) },
  {
    name: 'logs', args: 'ID [-f]', summary: 'a job\'s output (-f: follow it live)', client: true, positionals: [1, 1],
    options: client({ follow: { type: 'boolean', short: 'f', help: 'follow the output until the job ends, then exit with its status' } }),
    details: 'The job\'s stdout goes to stdout and its stderr to stderr. Without -f the job must have ended (--json: GET /jobs/{id}/logs as is). Ctrl-C stops following; the job runs on. ' + RELAY.replace('Exit status', 'With -f, the exit status'),
  },
  { name: 'wait', args: 'ID', summary: 'wait for a job to end; exit with its status', client: true, positionals: [1, 1], options: client({}), details: RELAY },
  {
    name: 'cancel', args: 'ID', summary: 'cancel a pending or running job', client: true, positionals: [1, 1], options: client({}),
    details: 'When the job\'s worker has not confirmed the kill within the server\'s bounded wait, the job is still running with the cancel recorded: the command says so and exits 0 (`jobrunner wait ID` waits for the end).',
  },
  { name: 'purge', args: 'ID', summary: 'delete a finished job and its output', client: true, positionals: [1, 1], options: client({}, false) },
  { name: 'stats', args: '', summary: 'job counts per status', client: true, positionals: [0, 0], options: client({}) },

  {
    name: 'batch submit', args: 'FILE.json|-', summary: 'create a batch of jobs from a JSON file (- : stdin)', client: true, positionals: [1, 1], options: client({}),
    details: 'The file holds the body of POST /job-batches: {"name": "...", "description": "...", "jobs": [{"name": "...", "command": ["..."], ...}, ...]}. All jobs are created or none.',
  },
  {
    name: 'batch ls', args: '[options]', summary: 'list batches, newest first', client: true, positionals: [0, 0],
    options: client({ name: { type: 'string', value: 'TEXT', help: 'only batches whose name contains TEXT' }, limit: { type: 'string', value: 'N', help: 'at most N batches (default 20, at most 1000)' } }),
  },
  { name: 'batch show', args: 'ID', summary: 'a batch and its jobs', client: true, positionals: [1, 1], options: client({}) },
  { name: 'batch cancel', args: 'ID', summary: 'cancel every pending or running job of a batch', client: true, positionals: [1, 1], options: client({}) },

  { name: 'users ls', args: '', summary: 'list users (admins)', client: true, positionals: [0, 0], options: client({}) },
  {
    name: 'users create', args: '--email EMAIL [--role ROLE] [--max-jobs N]', summary: 'create a user (admins)', client: true, positionals: [0, 0],
    options: client({
      email: { type: 'string', value: 'EMAIL', help: 'the new user\'s email (required)' },
      role: { type: 'string', value: 'ROLE', help: 'admin, operator (default) or viewer' },
      'max-jobs': { type: 'string', value: 'N', help: 'their own limit of running jobs (default: the global default)' },
    }),
    details: 'The password comes from NEW_USER_PASSWORD, else a prompt on a terminal, else the first line of stdin.',
  },
  {
    name: 'users update', args: 'ID|EMAIL [options]', summary: 'change a user\'s role, activity, limit or password (admins)', client: true, positionals: [1, 1],
    options: client({
      role: { type: 'string', value: 'ROLE', help: 'admin, operator or viewer' },
      activate: { type: 'boolean', help: 'let the user log in again' },
      deactivate: { type: 'boolean', help: 'refuse the user from now on (their sessions and tokens stop working)' },
      'max-jobs': { type: 'string', value: 'N|none', help: 'their own limit of running jobs; none: the global default' },
      password: { type: 'boolean', help: 'set a new password (from NEW_USER_PASSWORD, a prompt, or stdin)' },
    }),
  },
  { name: 'limits get', args: '', summary: 'the default limit of running jobs per user and the overrides (admins)', client: true, positionals: [0, 0], options: client({}) },
  {
    name: 'limits set', args: '[--user ID|EMAIL] N|none', summary: 'set the default limit, or one user\'s (none: clear it) (admins)', client: true, positionals: [1, 1],
    options: client({ user: { type: 'string', value: 'ID|EMAIL', help: 'set this user\'s limit instead of the default' } }),
  },
  {
    name: 'completion', args: 'bash|zsh', summary: 'print a shell completion script', client: false, positionals: [1, 1], options: { help: HELP },
    details: 'bash: `source <(jobrunner completion bash)` in ~/.bashrc. zsh: `source <(jobrunner completion zsh)` in ~/.zshrc, after compinit.',
  },
];

/** `batch`, `users`, `limits`: commands that take a subcommand. */
export const GROUPS: Record<string, string> = {
  batch: 'batches of jobs',
  users: 'user accounts (admins)',
  limits: 'limits of running jobs per user (admins)',
};

export const findCommand = (name: string) => COMMANDS.find((c) => c.name === name);
export const subcommands = (group: string) => COMMANDS.filter((c) => c.name.startsWith(group + ' '));

const EXIT_CODES = `exit status: 0 done; 1 the server refused or failed the request; 2 bad command line;
  3 not logged in, token refused or not allowed; 4 no such job, batch or user;
  5 server unreachable or unavailable (503). submit --wait/--follow, wait and
  logs -f exit with the job's status: its exit code, 128+N killed by signal N,
  124 timed out, 125 failed without an exit code, 126/127 program not
  runnable/not found, 130 canceled.`;

function synopsis(c: CommandSpec): string {
  return `${c.name}${c.args ? ' ' + c.args : ''}`;
}

export function mainHelp(version: string): string {
  const line = (left: string, right: string) => (left.length < 26 ? `  ${left.padEnd(26)}${right}` : `  ${left}\n  ${' '.repeat(26)}${right}`);
  const server = COMMANDS.filter((c) => !c.client && c.name !== 'completion');
  const clientTop = COMMANDS.filter((c) => c.client && !c.name.includes(' '));
  const groups = Object.keys(GROUPS).map((g) => line(`${g} ${subcommands(g).map((c) => c.name.split(' ')[1]).join('|')}`, GROUPS[g]!));
  return `jobrunner ${version}: runs commands as jobs behind a REST and GraphQL API, and its client

usage: jobrunner <command> [options]
       jobrunner <command> --help

server commands (on the server's machine):
${server.map((c) => line(c.name === 'serve' ? 'serve [--no-worker]' : c.name, c.summary)).join('\n')}

client commands (over HTTP, as the user you logged in as):
${clientTop.map((c) => line(c.name === 'logs' ? 'logs ID [-f]' : c.args === 'ID' ? `${c.name} ID` : c.name === 'submit' ? 'submit -- CMD [ARGS...]' : c.name, c.summary)).join('\n')}
${groups.join('\n')}
  client options: --server URL, --json (the API's JSON, for scripts), -h/--help

other:
${line('completion bash|zsh', 'print a shell completion script')}
${line('help [COMMAND]', 'this text, or one command\'s (also -h, --help)')}
${line('--version, -v', 'print the version')}

environment:
  JOBRUNNER_SERVER, JOBRUNNER_TOKEN  the client's server and token (over the config file)
  JOBRUNNER_CONFIG  the client's login file (default ~/.config/jobrunner/config.json)
  DATA_DIR      data directory: SQLite database, secrets, job workspace (default ./data)
  DATABASE_URL  postgresql://... for a shared database, or file:<path>; unset: SQLite in DATA_DIR
  REDIS_URL     Redis for events across several processes (optional)
  PORT          HTTP port (default 8000); README.md has the rest

${EXIT_CODES}
`;
}

export function commandHelp(c: CommandSpec): string {
  const opts = Object.entries(c.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.value ? ` ${o.value}` : ''}`;
    return flag.length < 22 ? `  ${flag.padEnd(22)}${o.help}` : `  ${flag}\n  ${' '.repeat(22)}${o.help}`;
  });
  const details = c.details ? `\n${wrap(c.details, 78)}\n` : '';
  return `usage: jobrunner ${synopsis(c)}\n\n${c.summary}\n${details}\noptions:\n${opts.join('\n')}\n`;
}

export function groupHelp(group: string): string {
  const subs = subcommands(group);
  const w = Math.max(...subs.map((c) => synopsis(c).length)) + 2;
  return `usage: jobrunner ${group} <${subs.map((c) => c.name.split(' ')[1]).join('|')}> [options]\n\n${GROUPS[group]}\n\n${subs.map((c) => `  ${synopsis(c).padEnd(w)}${c.summary}`).join('\n')}\n\nrun \`jobrunner ${group} <subcommand> --help\` for its options\n`;
}

function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join('\n');
}
