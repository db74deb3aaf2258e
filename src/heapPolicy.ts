// Imported first by main.ts. V8 lets the old generation grow to several
// times the live heap before a full collection. A log flood keeps promoting
// short-lived output strings, so a server whose live heap is small grew by
// 140-170 MB of garbage while streaming 500 MB. Growing by 50% per cycle
// instead kept it to 50-75 MB for about 10% more CPU per MB streamed (20%
// gave 40-56 MB for 20% more CPU; bench/RESULTS.md, logs).
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--heap-growing-percent=50');
