/** GraphQL gives absent input fields as undefined and explicit nulls as null; services see only what was sent. */
export function present<T extends object>(input: T): Partial<T> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<T>;
}
