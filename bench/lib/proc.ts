// Child processes the benches start: every one is tracked by PID, stopped by
// PID (never by name), and killed if the bench itself exits early.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const tracked = new Map<number, { name: string; group: boolean }>();

function killTracked(): void {
  for (const [pid, t] of tracked) {
    try {
      process.kill(t.group ? -pid : pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  tracked.clear();
}

let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on('exit', killTracked);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping started processes\n`);
      killTracked();
      process.exit(130);
    });
  }
}

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  isRunning(): boolean;
  /** Last lines of stderr (for error messages). */
  stderrTail(): string;
  /** Sends `signal` to the PID (the group when started detached); SIGKILL after `killAfterMs`. */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | string>;
}

export function start(name: string, cmd: string, args: string[], opts: SpawnOptions & { captureStdout?: (chunk: Buffer) => void } = {}): Child {
  hookExit();
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${cmd})`);
  const pid = proc.pid;
  const group = Boolean(opts.detached);
  tracked.set(pid, { name, group });
  let running = true;
  let tail = '';
  proc.stderr?.on('data', (b: Buffer) => {
    tail = (tail + b.toString('utf8')).slice(-4000);
  });
  if (opts.captureStdout) proc.stdout?.on('data', opts.captureStdout);
  else proc.stdout?.resume();
  const exited = new Promise<number | string>((resolve) => {
    proc.once('exit', (code, signal) => {
      running = false;
      tracked.delete(pid);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return {
    name,
    proc,
    pid,
    exited,
    isRunning: () => running,
    stderrTail: () => tail,
    async stop(signal = 'SIGTERM', killAfterMs = 20_000) {
      if (!running) return exited;
      try {
        process.kill(group ? -pid : pid, signal);
      } catch {
        /* already gone */
      }
      const timer = setTimeout(() => {
        if (!running) return;
        process.stderr.write(`bench: ${name} (pid ${pid}) did not exit ${killAfterMs} ms after ${signal}; SIGKILL\n`);
        try {
          process.kill(group ? -pid : pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, killAfterMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Runs a command to completion, collecting stdout; rejects on non-zero exit or timeout. */
export async function run(name: string, cmd: string, args: string[], opts: SpawnOptions & { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const out: Buffer[] = [];
  const child = start(name, cmd, args, { ...opts, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], captureStdout: (b) => out.push(b) });
  if (opts.input !== undefined) child.proc.stdin!.end(opts.input);
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const timer = setTimeout(() => void child.stop('SIGKILL', 1000), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  const stdout = Buffer.concat(out).toString('utf8');
  if (code !== 0) throw new Error(`${name} exited with ${code}${code === 'SIGKILL' ? ` (timeout ${timeoutMs} ms?)` : ''}\n${child.stderrTail()}`);
  return stdout;
}

/** VmRSS of a process in bytes, or null when it is gone. */
export function rssBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Samples VmRSS every `everyMs`; peak and the first sample. */
export function rssSampler(pid: number, everyMs = 50) {
  const first = rssBytes(pid) ?? 0;
  let peak = first;
  const t = setInterval(() => {
    const v = rssBytes(pid);
    if (v !== null && v > peak) peak = v;
  }, everyMs);
  return {
    first,
    stop(): { first: number; peak: number } {
      clearInterval(t);
      const v = rssBytes(pid);
      if (v !== null && v > peak) peak = v;
      return { first, peak };
    },
  };
}

/** Exits the bench if `ms` pass: every figure bounds itself in time. */
export function watchdog(name: string, ms: number): () => void {
  const t = setTimeout(() => {
    process.stderr.write(`bench: ${name} exceeded its time bound of ${Math.round(ms / 1000)} s; stopping\n`);
    killTracked();
    process.exit(2);
  }, ms);
  t.unref();
  return () => clearTimeout(t);
}

/** CPU time (user + system) a process has used so far, in ms; null when it is gone. Independent of how busy the rest of the machine is. */
export function cpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11], fields[12]: utime, stime in clock ticks (fields counted from field 3, "state").
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64

/**
 * CPU time the whole machine has spent busy so far (user, nice, system, irq,
 * softirq over all cores), in ms: everything a figure costs, clients and the
 * jobs themselves included, and whatever else runs.
 */
export function machineBusyMs(): number {
  const [, user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  return ((user! + nice! + system! + irq! + softirq!) * 1000) / CLK_TCK;
}

/** The PIDs of a process's children (all threads), from /proc. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    /* gone */
  }
  return out;
}

/**
 * CPU time of a process and every descendant alive right now (e.g. the
 * server plus its spawner helper, once the jobs are gone), in ms.
 */
export function cpuMsTree(pid: number): number {
  let total = cpuMs(pid) ?? 0;
  for (const c of childPids(pid)) total += cpuMsTree(c);
  return total;
}
