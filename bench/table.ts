// Markdown tables and number formats for the report: one way to write each.

/** A Markdown table; `align` per column: l (default for the first) or r. */
export function table(header: string[], rows: string[][], align: Array<'l' | 'r'> = header.map((_, i) => (i === 0 ? 'l' : 'r'))): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(align.map((a) => (a === 'r' ? '---:' : '---'))), ...rows.map(line)].join('\n');
}

/** Thousands separated, no decimals; blank for NaN. */
export function int(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en') : '';
}

export function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '';
}

/** Milliseconds: three significant digits at most, at least one decimal below 10, thousands separated. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return '';
  if (value >= 100) return int(value);
  if (value >= 10) return value.toFixed(1);
  return value < 1 ? value.toFixed(3) : value.toFixed(2);
}

export function ratio(value: number): string {
  if (!Number.isFinite(value)) return '';
  // Two significant digits below 0.1: a 0.012× must not read as 0.01× (or 0.00×).
  return `${value < 0.1 && value > 0 ? value.toPrecision(2) : value.toFixed(2)}×`;
}
