#!/usr/bin/env node
// The `kappa` command. Kappa ships TypeScript sources and runs them through tsx, so the CLI,
// the tests and `npm start` always execute the same code with no separate build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
