/**
 * Kappa projects for tests: a temp folder that holds config files (ESM, importing Kappa from this
 * checkout) and data directories, and the config sources several suites share.
 *
 *   KAPPA_SRC                      the package entry a config imports (`from ${JSON.stringify(KAPPA_SRC)}`)
 *   tempProject(t, prefix)         { root, writeConfig(source, name?), dataDir(name) }, removed when `t` ends
 *   projectIn(root)                the same in a folder the caller owns
 *   tempDataProject(t, prefix, source?)
 *                                  a tempProject laid out as most `kappa start` tests want it: `dir` (root/data)
 *                                  and `config` (root/kappa.config.ts, written from `source` if given)
 *   totalsConfig(opts)             topic `sales` (region, cents[, refund]) and view `totals` by region
 *   bigSalesConfig(opts)           topics `sales` and `big_sales`, an output between them, three views
 *
 * writeConfig without a name writes a fresh file each call (`kappa-1.config.ts`, `kappa-2.config.ts`, ...): ESM
 * caches modules by URL, so a config changed under the same name would not be loaded again.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Owner, tempDir } from './cleanup.ts';

export const KAPPA_SRC = fileURLToPath(new URL('../../src/index.ts', import.meta.url));

export interface Project {
  /** The folder: package.json ("type": "module") and the config files. */
  root: string;
  /** Writes `source` to a new config file in `root` (`name.config.ts` if named) and returns its path. */
  writeConfig(source: string, name?: string): string;
  /** `root/name`, a data directory (not created: Kappa creates it). */
  dataDir(name: string): string;
}

export function tempProject(t: Owner, prefix = 'kappa-project-'): Project {
  return projectIn(tempDir(t, prefix));
}

export interface DataProject extends Project {
  /** `root/data`, the data directory (not created: Kappa creates it). */
  dir: string;
  /** `root/kappa.config.ts`. */
  config: string;
}

/** tempProject with its data directory `dir` and config file `config`, written from `source` if given. */
export function tempDataProject(t: Owner, prefix: string, source?: string): DataProject {
  const project = tempProject(t, prefix);
  const config = join(project.root, 'kappa.config.ts');
  if (source !== undefined) writeFileSync(config, source);
  return { ...project, dir: project.dataDir('data'), config };
}

/** A project in an existing folder `root` (the caller removes it): writes its package.json. */
export function projectIn(root: string): Project {
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  let configs = 0;
  return {
    root,
    writeConfig(source, name = `kappa-${++configs}`) {
      const file = join(root, `${name}.config.ts`);
      writeFileSync(file, source);
      return file;
    },
    dataDir: (name) => join(root, name),
  };
}

export interface TotalsConfigOptions {
  /** Partitions of `sales` (default 2). */
  partitions?: number;
  /** Sales carry `refund: boolean` in their schema. */
  refund?: boolean;
  /** Source put between `from(sales)` and `.groupBy(...)`, such as `.filter((s) => !s.refund)`. */
  filter?: string;
  /** The view's options object as source, such as `{ keepVersions: 2 }` (default none). */
  viewOptions?: string;
}

/** Sales keyed by region, and view `totals`: cents summed and sales counted (`n`) per region. */
export function totalsConfig(opts: TotalsConfigOptions = {}): string {
  const refund = opts.refund ? ', refund: Type.Boolean()' : '';
  const viewOptions = opts.viewOptions === undefined ? '' : `, ${opts.viewOptions}`;
  return `
import { Type, count, defineApp, from, sum, topic, view } from ${JSON.stringify(KAPPA_SRC)};
const Sale = Type.Object({ region: Type.String(), cents: Type.Integer()${refund} });
const sales = topic('sales', { partitions: ${opts.partitions ?? 2}, schema: Sale, key: (s) => s.region });
export default defineApp({
  topics: [sales],
  views: [view('totals', from(sales)${opts.filter ?? ''}.groupBy((s) => ({ region: s.region })).aggregate({ cents: sum((s) => s.cents), n: count() })${viewOptions})],
});
`;
}

/**
 * Sales (id, region, cents, ts; 3 partitions, keyed by id, event time ts); an output that copies each
 * sale of `bigCents` or more to `big_sales` (2 partitions, keyed by region); views `big_by_region`,
 * `by_region` and `per_minute` (a one-minute tumbling window, with `allowedLateness` if given).
 */
export function bigSalesConfig(opts: { bigCents: number; allowedLateness?: string }): string {
  const window =
    opts.allowedLateness === undefined
      ? `tumbling('1m')`
      : `tumbling('1m', { allowedLateness: '${opts.allowedLateness}' })`;
  return `
import { Type, count, defineApp, from, sum, topic, tumbling, view } from ${JSON.stringify(KAPPA_SRC)};
const Sale = Type.Object({ id: Type.Integer(), region: Type.String(), cents: Type.Integer(), ts: Type.Integer() });
const Big = Type.Object({ id: Type.Integer(), region: Type.String(), cents: Type.Integer() });
const sales = topic('sales', { partitions: 3, schema: Sale, key: (s) => String(s.id), time: (s) => s.ts });
const big = topic('big_sales', { partitions: 2, schema: Big, key: (b) => b.region });
export default defineApp({
  topics: [sales, big],
  outputs: [from(sales).filter((s) => s.cents >= ${opts.bigCents}).map((s) => ({ id: s.id, region: s.region, cents: s.cents })).to(big)],
  views: [
    view('big_by_region', from(big).groupBy((b) => ({ region: b.region })).aggregate({ cents: sum((b) => b.cents), orders: count() })),
    view('by_region', from(sales).groupBy((s) => ({ region: s.region })).aggregate({ cents: sum((s) => s.cents), orders: count() })),
    view('per_minute', from(sales).window(${window}).groupBy((s) => ({ region: s.region })).aggregate({ cents: sum((s) => s.cents), orders: count() })),
  ],
});
`;
}
