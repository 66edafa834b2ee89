/**
 * Runs one benchmark: `npm run bench -- <name> [bench flags]` imports `bench/<name>.ts` and calls its
 * `run` (see lib/harness.ts for the contract). The bench prints a readable table; this runner then
 * prints the bench's figures as the LAST line, one JSON object `{"bench":"<name>", ...figures}`, so a
 * script can take `tail -n 1` of the output. Benches are never part of `npm test`.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type BenchModule, isUsageError } from './lib/harness.ts';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

/** Every `bench/*.ts` except this runner is a bench; shared code lives in `bench/lib/`. */
function benchNames(): string[] {
  return readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
    .map((f) => f.slice(0, -'.ts'.length))
    .sort();
}

function load(name: string): Promise<BenchModule> {
  return import(pathToFileURL(join(BENCH_DIR, `${name}.ts`)).href) as Promise<BenchModule>;
}

async function printUsage(problem: string): Promise<void> {
  const lines = [problem, '', 'Available benches:'];
  for (const name of benchNames()) lines.push(`  ${name.padEnd(12)} ${(await load(name)).description}`);
  lines.push('', 'Run one with: npm run bench -- <name>');
  process.stderr.write(lines.join('\n') + '\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name.startsWith('-')) {
    await printUsage('Name the bench to run.');
    return 1;
  }
  // Only names from the directory listing are imported, so an argument never becomes an arbitrary path.
  if (!benchNames().includes(name)) {
    await printUsage(`There is no bench called "${name}".`);
    return 1;
  }
  let figures;
  try {
    figures = await (await load(name)).run(args);
  } catch (err) {
    if (!isUsageError(err)) throw err;
    process.stderr.write(`${name}: ${err.message}\n`);
    return 1;
  }
  process.stdout.write(JSON.stringify({ bench: name, ...figures }) + '\n');
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
