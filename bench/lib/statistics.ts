/**
 * The statistics of the fairness checks (tests and `npm run bench -- lobby`):
 * Pearson's χ² test of independence between arrival order and queue
 * position, the χ² distribution's tail, ranks, and a seeded generator for
 * reproducible draws. Pure TypeScript: runs in workerd and in Node.
 */

/**
 * A seeded generator (mulberry32). The room draws its keys from
 * crypto.getRandomValues; the test feeds it this stream instead, so the χ²
 * verdict is reproducible rather than wrong in 1% of runs by construction.
 */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; about 15 significant digits). */
function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012,
    9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let sum = c[0] ?? 0;
  for (let i = 1; i < c.length; i++) sum += (c[i] ?? 0) / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}

/** Q(a, x) = Γ(a, x) / Γ(a), the regularized upper incomplete gamma function (series below a + 1, Lentz's continued fraction above). */
function upperRegularizedGamma(a: number, x: number): number {
  if (x <= 0) return 1;
  const prefix = Math.exp(-x + a * Math.log(x) - logGamma(a));
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let n = 1; n < 10_000 && Math.abs(term) > Math.abs(sum) * 1e-15; n++) {
      term *= x / (a + n);
      sum += term;
    }
    return 1 - sum * prefix;
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 10_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return prefix * h;
}

/** P(X > statistic) for X ~ χ²(degrees). */
export function chiSquareSurvival(statistic: number, degrees: number): number {
  return upperRegularizedGamma(degrees / 2, statistic / 2);
}

/** Pearson's χ² test of independence on a contingency table of counts. */
export function independenceTest(table: number[][]): { statistic: number; degrees: number; p: number } {
  const rows = table.map((row) => row.reduce((a, b) => a + b, 0));
  const columns = (table[0] ?? []).map((_, j) => table.reduce((sum, row) => sum + (row[j] ?? 0), 0));
  const total = rows.reduce((a, b) => a + b, 0);
  let statistic = 0;
  table.forEach((row, i) =>
    row.forEach((observed, j) => {
      const expected = ((rows[i] ?? 0) * (columns[j] ?? 0)) / total;
      statistic += (observed - expected) ** 2 / expected;
    }),
  );
  const degrees = (rows.length - 1) * (columns.length - 1);
  return { statistic, degrees, p: chiSquareSurvival(statistic, degrees) };
}

/** `table[arrival bucket][position bucket]` (`buckets` of each) from arrival ranks and queue ranks (both 0..n-1). */
export function contingency(arrivalRank: number[], queueRank: number[], buckets = 10): number[][] {
  const n = arrivalRank.length;
  const table = Array.from({ length: buckets }, () => new Array<number>(buckets).fill(0));
  arrivalRank.forEach((arrival, i) => {
    const row = table[Math.floor((arrival * buckets) / n)];
    const column = Math.floor(((queueRank[i] ?? 0) * buckets) / n);
    if (row) row[column] = (row[column] ?? 0) + 1;
  });
  return table;
}

/** The rank (0 = smallest) of each value. */
export function rankOf(values: number[]): number[] {
  const order = values.map((_, i) => i).sort((a, b) => (values[a] ?? 0) - (values[b] ?? 0));
  const ranks = new Array<number>(values.length);
  order.forEach((index, rank) => (ranks[index] = rank));
  return ranks;
}

/** The q-quantile of `values` (nearest rank; 0 for none); they need not be sorted. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}
