// What a client command gets: its parsed command line and the API client
// for the server it talks to.
import { resolveTarget } from './config.js';
import { UsageError } from './errors.js';
import { Api } from './http.js';
import type { Values } from './parse.js';

export interface Ctx {
  api: Api;
  values: Values;
  positionals: string[];
  json: boolean;
}

export function contextFor(values: Values, positionals: string[]): Ctx {
  const server = values.server as string | undefined;
  return { api: new Api(resolveTarget(server)), values, positionals, json: values.json === true };
}

export const str = (v: Values, name: string) => v[name] as string | undefined;

/** A whole-number option, or a usage error naming it. Its bounds are the server's to check (its 422 names the option). */
export function intOption(v: Values, name: string): number | undefined {
  const raw = str(v, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n)) throw new UsageError(`--${name} takes a whole number, not ${JSON.stringify(raw)}`);
  return n;
}
