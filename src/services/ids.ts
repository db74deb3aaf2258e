// UUIDv7 (RFC 9562): ids sort by creation time, so lists and cursors stay
// cheap. Monotonic within a process: ids made in the same millisecond count
// up in rand_a (12 bits, seeded below 2^11 to leave room), which keeps a
// batch's jobs in submission order. Random bits come from a pooled buffer:
// one getrandom call per 256 ids instead of one per id.
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(8 * 256);
let poolAt = pool.length;
let lastMs = -1;
let counter = 0;

function random8(): Buffer {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const out = pool.subarray(poolAt, poolAt + 8);
  poolAt += 8;
  return out;
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

export function newId(): string {
  let ms = Date.now();
  const rand = random8();
  if (ms > lastMs) {
    lastMs = ms;
    counter = ((rand[0]! << 8) | rand[1]!) & 0x7ff;
  } else {
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      // 4096 ids in one millisecond: borrow the next one.
      ms = ++lastMs;
      counter = 0;
    }
  }
  const high = Math.floor(ms / 0x10000);
  const low = ms % 0x10000;
  const randB = (((rand[2]! & 0x3f) | 0x80) << 8) | rand[3]!;
  const tail = rand.readUIntBE(4, 4).toString(16).padStart(8, '0') + hex((rand[0]! << 8) | rand[1]!, 4);
  return `${hex(high, 8)}-${hex(low, 4)}-${hex(0x7000 | counter, 4)}-${hex(randB, 4)}-${tail}`;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** A malformed id is treated exactly like an unknown one (404), so check before querying. */
export const isId = (s: string): boolean => UUID.test(s);
