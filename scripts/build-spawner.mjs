// Builds the native spawner helper (native/*.c -> dist/jobrunner-spawner)
// with the system C compiler; run by `npm install` (prepare) and before the
// tests. Without a compiler the service still works: it falls back to the
// Node spawner (slower job starts) and says so at start-up.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = join(root, 'native');
const sources = readdirSync(native).filter((f) => f.endsWith('.c')).map((f) => join(native, f));
const target = join(root, 'dist', 'jobrunner-spawner');

const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};

if (process.platform !== 'linux') {
  console.warn('jobrunner: the native spawner is built for Linux only; the Node spawner will be used.');
} else if (mtime(target) < Math.max(...readdirSync(native).map((f) => mtime(join(native, f))))) {
  mkdirSync(dirname(target), { recursive: true });
  const cc = process.env.CC || 'cc';
  const building = `${target}.building`;
  try {
    // Paths are bounded (PATH_MAX); a truncated one names nothing and fails like any other.
    execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-Wno-format-truncation', '-std=c11', '-o', building, ...sources], { stdio: 'inherit' });
    renameSync(building, target);
  } catch (err) {
    // A helper built from older source may not speak the client's protocol: never leave it in place.
    rmSync(target, { force: true });
    rmSync(building, { force: true });
    console.warn(
      `jobrunner: could not build the native spawner with ${cc} (${err.message.split('\n')[0]}).\n` +
        '  The service will start jobs through the Node spawner instead (slower job starts).\n' +
        '  Install a C compiler (Debian: apt-get install -y gcc) and run `npm run build` to get it.',
    );
  }
}
