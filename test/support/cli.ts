/**
 * The `kappa` CLI, run the two ways the suites need:
 *
 *   kappaInProcess(args, stdin?)   through `main` in this process, for speed
 *   kappaProcess(args, opts?)      as a child process, the way a user runs it (runKappa in
 *                                  processes.ts: killed on timeout, or when opts.t ends)
 *
 * Both resolve with { code, stdout, stderr }; a non-zero exit is a result, not an error. A child
 * that died of a signal has code -1.
 */
import { PassThrough, Readable } from 'node:stream';
import { main } from '../../src/cli/main.ts';
import { type RunOptions, runKappa } from './processes.ts';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `kappa ...args` in this process with `stdin` as its standard input. */
export async function kappaInProcess(args: readonly string[], stdin = ''): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await main([...args], { stdout, stderr, stdin: Readable.from(stdin ? [stdin] : []) });
  return { code, stdout: out, stderr: err };
}

/** Runs `node bin/kappa.js ...args` as a child process to completion. */
export async function kappaProcess(args: readonly string[], opts: RunOptions = {}): Promise<CliRun> {
  const res = await runKappa(args, opts);
  return { code: res.code ?? -1, stdout: res.stdout, stderr: res.stderr };
}
