import { v7, validate } from 'uuid';

/** UUIDv7: ids sort by creation time, so lists and cursors stay cheap. */
export const newId = (): string => v7();

/** A malformed id is treated exactly like an unknown one (404), so check before querying. */
export const isId = (s: string): boolean => validate(s);
