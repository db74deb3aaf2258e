// The job of the `fanout` figure: after DELAY_MS, prints its own wall-clock
// time in milliseconds (epoch, microsecond precision) every INTERVAL_MS for
// DURATION_MS, one line each. Usage: node tick.mjs DELAY_MS DURATION_MS INTERVAL_MS
const [delay = 5000, duration = 10_000, interval = 10] = process.argv.slice(2).map(Number);
const now = () => performance.timeOrigin + performance.now();
setTimeout(() => {
  const end = now() + duration;
  const tick = () => {
    const t = now();
    if (t >= end) return;
    process.stdout.write(`${t.toFixed(3)}\n`);
    setTimeout(tick, interval);
  };
  tick();
}, delay);
