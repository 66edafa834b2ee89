/**
 * `kappa` start-up: how long `kappa --help`, `kappa views` and `kappa query` take from the command to
 * the exit, run from the compiled package (dist/, what `npm install kappa` gives, bin/kappa.js with
 * KAPPA_FROM_DIST=1) and from the sources through tsx (what a clone runs), against the peer every
 * Node command pays, `node -e 0`. The median of `--runs` runs each (default 7), one at a time.
 *
 *   npm run build && npm run bench -- cli [--runs N]
 *
 * It measures dist/ as it is: build first, or the figures are those of an older build. The views
 * are those of a small app started once in a temp data dir (a topic, one grouped view, a few records).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BenchUsageError, type Figure, formatTable, nowMs } from './lib/harness.ts';

export const description = 'kappa --help, views and query start-up: compiled package vs sources through tsx';

const BIN = fileURLToPath(new URL('../bin/kappa.js', import.meta.url));
const DIST_MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const SRC_INDEX = fileURLToPath(new URL('../src/index.ts', import.meta.url));
const RUNS_DEFAULT = 7;
/** How long the app may take to start and register its views. */
const SETUP_TIMEOUT_MS = 60_000;

const CONFIG = `
import { Type, count, defineApp, from, sum, topic, view } from ${JSON.stringify(SRC_INDEX)};
const Sale = Type.Object({ region: Type.String(), amount: Type.Number() });
const sales = topic('sales', { partitions: 2, schema: Sale, key: (s) => s.region });
export default defineApp({
  topics: [sales],
  views: [view('totals', from(sales).groupBy((s) => ({ region: s.region })).aggregate({ total: sum((s) => s.amount), n: count() }))],
});
`;

interface Command {
  name: string;
  args: string[];
}

/** Runs `node args` to its end and returns the wall time in ms; throws with its output if it fails. */
function timed(args: string[], env: NodeJS.ProcessEnv): number {
  const started = nowMs();
  const r = spawnSync(process.execPath, args, { env, encoding: 'utf8' });
  const elapsed = nowMs() - started;
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
  return elapsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** A data dir with the app's topic and view, by running `kappa start` on it once until its views exist. */
async function setUp(root: string): Promise<string> {
  const dataDir = join(root, 'data');
  const config = join(root, 'kappa.config.ts');
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  writeFileSync(config, CONFIG);
  const base = ['--data-dir', dataDir];
  const records = '{"region":"north","amount":3}\n{"region":"south","amount":4.5}\n';
  spawnSync(process.execPath, [BIN, ...base, 'topics', 'create', 'sales', '--partitions', '2']);
  spawnSync(process.execPath, [BIN, ...base, 'produce', 'sales', '--key-field', 'region'], { input: records });
  const start = spawn(process.execPath, [BIN, ...base, '--config', config, 'start', '--no-server', '--workers', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  start.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const deadline = Date.now() + SETUP_TIMEOUT_MS;
  try {
    while (!/running \d+ views? /.test(stderr)) {
      if (start.exitCode !== null || Date.now() > deadline)
        throw new Error(`the bench's app did not start:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    start.kill('SIGINT');
    await new Promise((r) => start.once('close', r));
  }
  return dataDir;
}

export async function run(argv: string[]): Promise<Record<string, Figure>> {
  const { values } = parseArgs({ args: argv, options: { runs: { type: 'string', default: String(RUNS_DEFAULT) } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new BenchUsageError(`--runs must be a whole number of 1 or more`);
  if (!existsSync(DIST_MAIN)) throw new BenchUsageError('dist/ is missing: run `npm run build` first.');

  const root = mkdtempSync(join(tmpdir(), 'kappa-bench-cli-'));
  try {
    const dataDir = await setUp(root);
    const commands: Command[] = [
      { name: 'kappa --help', args: ['--help'] },
      { name: 'kappa views', args: ['--data-dir', dataDir, 'views'] },
      { name: 'kappa query', args: ['--data-dir', dataDir, 'query', 'SELECT region, total, n FROM totals'] },
    ];
    const dist = { ...process.env, KAPPA_FROM_DIST: '1' };
    const src = { ...process.env };
    delete src.KAPPA_FROM_DIST;
    const peerMs = median(Array.from({ length: runs }, () => timed(['-e', '0'], process.env)));
    const figures: Record<string, Figure> = { runs, node_e0_ms: Math.round(peerMs) };
    const rows = [['node -e 0', peerMs.toFixed(0), '', '1.0', '']];
    for (const c of commands) {
      const distMs = median(Array.from({ length: runs }, () => timed([BIN, ...c.args], dist)));
      const srcMs = median(Array.from({ length: runs }, () => timed([BIN, ...c.args], src)));
      const key = c.name.replace(/^kappa /, '').replace(/\W+/g, '');
      figures[`${key}_dist_ms`] = Math.round(distMs);
      figures[`${key}_src_ms`] = Math.round(srcMs);
      figures[`${key}_dist_vs_node`] = Number((distMs / peerMs).toFixed(1));
      rows.push([
        c.name,
        distMs.toFixed(0),
        srcMs.toFixed(0),
        (distMs / peerMs).toFixed(1),
        (srcMs / distMs).toFixed(1),
      ]);
    }
    console.log(
      formatTable(
        ['command (median ms)', 'compiled', 'sources+tsx', 'compiled / node -e 0', 'sources / compiled'],
        rows,
      ),
    );
    return figures;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
