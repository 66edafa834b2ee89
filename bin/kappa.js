#!/usr/bin/env node
// The `kappa` command. It runs one of two builds of the same code:
//
//   - Installed (npm install kappa): the compiled JavaScript in dist/, with no TypeScript loader for
//     Kappa's own code, so a command starts in a fraction of a second. tsx is registered only for the
//     commands that may load the user's kappa.config.ts (start, demo, replay, rollback, check, and
//     any command not known to need no config), so `kappa --help`, `views`, `query` and the log
//     commands never pay for it.
//   - A clone of the repository (src/ is next to bin/): the TypeScript sources through tsx, so the
//     tests, `npm start` and `npx kappa` always run the code being edited, with no build step and no
//     stale dist/. `import … from 'kappa'` in the examples then resolves to src/ too (the
//     "kappa-source" export condition, see package.json and kappa-hooks.js).
//     KAPPA_FROM_DIST=1 runs dist/ instead (after `npm run build`), as the package does: bench/cli.ts
//     uses it to measure the installed start-up inside the repository.
import { existsSync } from 'node:fs';
import { register } from 'node:module';

const SRC_MAIN = new URL('../src/cli/main.ts', import.meta.url);
const DIST_MAIN = new URL('../dist/cli/main.js', import.meta.url);

/** Commands that never load a config file: the command, or the command and its subcommand. */
const NO_CONFIG = new Set([
  'help',
  'init',
  'produce',
  'consume',
  'verify',
  'token',
  'query',
  'lag',
  'views',
  'views list',
  'topics',
  'topics list',
  'topics describe',
  'topics create',
]);
/** Commands whose second word is a subcommand (for the others it is an argument: `kappa query "SELECT 1"`). */
const WITH_SUBCOMMANDS = new Set(['topics', 'views']);
/** Options of the program itself that take a value (`kappa --data-dir DIR views`). */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['--data-dir', '--config']);

/** The command and its subcommand as typed, skipping the program's own options ('views', 'topics list', ''). */
function commandOf(argv) {
  const words = [];
  for (let i = 0; i < argv.length && words.length < 2; i++) {
    const arg = argv[i];
    if (arg.startsWith('-')) {
      if (words.length === 0 && GLOBAL_OPTIONS_WITH_VALUE.has(arg)) i++;
      if (words.length === 1) break; // `kappa views --json`: options, no subcommand
      continue;
    }
    words.push(arg);
  }
  return words;
}

function needsTypeScript(argv) {
  const [command, sub] = commandOf(argv);
  if (command === undefined) return false; // `kappa`, `kappa --help`, `kappa --version`
  return !NO_CONFIG.has(WITH_SUBCOMMANDS.has(command) && sub !== undefined ? `${command} ${sub}` : command);
}

/** tsx for TypeScript, then Kappa's hooks (kappa-hooks.js), which run first because they are registered last. */
async function registerTypeScript(source) {
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  const root = source ? new URL('..', import.meta.url).href : null;
  register('./kappa-hooks.js', { parentURL: import.meta.url, data: { root } });
}

const argv = process.argv.slice(2);
const fromSource = existsSync(SRC_MAIN) && process.env.KAPPA_FROM_DIST !== '1';
if (!fromSource && !existsSync(DIST_MAIN)) {
  const root = new URL('..', import.meta.url).pathname;
  process.stderr.write(
    `kappa: error: ${DIST_MAIN.pathname} is missing: this copy of Kappa is not built. Run \`npm run build\` in ${root}.\n`,
  );
  process.exit(1);
}
if (fromSource || needsTypeScript(argv)) await registerTypeScript(fromSource);
const { main } = await import((fromSource ? SRC_MAIN : DIST_MAIN).href);
process.exitCode = await main(argv);
