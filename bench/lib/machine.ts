// What the figures were measured on. The load average is part of it: this
// machine may be shared with other test runs, which shows up there.
import { cpus, loadavg, release, totalmem } from 'node:os';

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  node: string;
  kernel: string;
  memGiB: number;
}

export function machine(): MachineInfo {
  const c = cpus();
  return {
    cores: c.length,
    cpuModel: (c[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim(),
    node: process.version,
    kernel: release(),
    memGiB: Math.round(totalmem() / 2 ** 30),
  };
}

export const load1 = (): number => loadavg()[0]!;

/** One line: "2 cores (model), 23 GiB, Node v20.x, Linux 6.x, load 1.2". */
export function describeMachine(m = machine()): string {
  return `${m.cores} cores (${m.cpuModel}), ${m.memGiB} GiB, Node ${m.node}, Linux ${m.kernel}, load avg ${load1().toFixed(1)}`;
}

/** Short form for the RESULTS.md table. */
export const shortMachine = (m = machine()): string => `${m.cores} cores (${m.cpuModel}), Node ${m.node}`;

/** Samples the 1-minute load average while a figure runs (shared-machine noise indicator). */
export function loadSampler(everyMs = 2000) {
  const samples: number[] = [load1()];
  const t = setInterval(() => samples.push(load1()), everyMs);
  t.unref();
  return {
    stop(): { min: number; max: number } {
      clearInterval(t);
      samples.push(load1());
      return { min: Math.min(...samples), max: Math.max(...samples) };
    },
  };
}
