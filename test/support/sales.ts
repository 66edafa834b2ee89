/**
 * Sales with refunds, the events of the suites that change a view's logic and crash or replay it
 * (kill-during-build, replay): a pure function of their number, so an oracle can recompute them.
 */

export const REGIONS = ['north', 'south', 'east'];

export interface Sale {
  region: string;
  cents: number;
  refund: boolean;
}

/** Sale number `i`: regions in turn, cents from 100 to 1096, every seventh a refund. */
export function saleAt(i: number): Sale {
  return { region: REGIONS[i % 3], cents: 100 + (i % 997), refund: i % 7 === 0 };
}

/** A numbered stream of sales: each call returns the next `n` as log records keyed by region. */
export function salesSource(): (n: number) => { key: string; value: string }[] {
  let serial = 0;
  return (n) =>
    Array.from({ length: n }, () => {
      const s = saleAt(serial++);
      return { key: s.region, value: JSON.stringify(s) };
    });
}
