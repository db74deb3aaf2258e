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

/** A whole number option within bounds, or a usage error naming it. */
export function intOption(v: Values, name: string, min: number, max: number): number | undefined {
  const raw = str(v, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} takes a whole number from ${min} to ${max}, not ${JSON.stringify(raw)}`);
  return n;
}
