// A small read-through cache for rows read on every request (the caller's
// user row, the default concurrency limit). Writers announce changes on the
// event bus, which reaches every process; the TTL only bounds how long a lost
// announcement (a Redis hiccup) could keep a stale value.
export interface ReadCache<K, V> {
  get(key: K, load: () => Promise<V>): Promise<V>;
  invalidate(key?: K): void;
}

export function createReadCache<K, V>(ttlMs: number, maxEntries: number): ReadCache<K, V> {
  const entries = new Map<K, { value: V; until: number }>();
  // Bumped on every invalidation: a load that started before one must not store its (possibly stale) result.
  let generation = 0;
  return {
    async get(key, load) {
      const hit = entries.get(key);
      if (hit && hit.until > Date.now()) return hit.value;
      const started = generation;
      const value = await load();
      if (started === generation) {
        entries.delete(key);
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
        entries.set(key, { value, until: Date.now() + ttlMs });
      }
      return value;
    },
    invalidate(key) {
      generation++;
      if (key === undefined) entries.clear();
      else entries.delete(key);
    },
  };
}
