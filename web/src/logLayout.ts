// Geometry of the virtualized log: which rows to draw for a scroll
// position, and where, at a fixed row height.

export const ROW_HEIGHT = 20;
const OVERSCAN = 20;
/**
 * Browsers cap an element's height (Chromium near 33.5 million px). Past
 * this height the scroll range is compressed: the scroll position maps
 * proportionally onto the lines, and rows are placed around the view.
 */
const MAX_SCROLL_PX = 8_000_000;

/** Where the rows of a log of `total` lines sit for a box `viewport` high scrolled to `scrollTop`. */
export function layout(total: number, scrollTop: number, viewport: number) {
  const full = total * ROW_HEIGHT;
  const height = Math.min(full, MAX_SCROLL_PX);
  // virtual px per scroll px (1 unless compressed)
  const scale = full > height && height > viewport ? (full - viewport) / (height - viewport) : 1;
  const virtualTop = scrollTop * scale;
  return {
    height,
    scale,
    first: Math.max(0, Math.floor(virtualTop / ROW_HEIGHT) - OVERSCAN),
    last: Math.min(total, Math.ceil((virtualTop + viewport) / ROW_HEIGHT) + OVERSCAN),
    /** The row's top inside the scrolled box. */
    top: (index: number) => scrollTop + index * ROW_HEIGHT - virtualTop,
  };
}
