/**
 * Runs the Log contract on FileLog, the embedded adapter, with real segment files in a temp dir.
 * What only FileLog has (its files, recovery, verify) is tested beside it in src/log/.
 */
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FileLog, openFileLog } from '../../src/log/index.ts';
import { type LogHarness, logContract } from './log.contract.ts';

const root = mkdtempSync(join(tmpdir(), 'kappa-log-contract-'));
after(() => rmSync(root, { recursive: true, force: true }));
let seq = 0;
const quiet = { info() {}, warn() {} };

logContract('FileLog', async (): Promise<LogHarness> => {
  const dir = join(root, String(seq++));
  let current = await openFileLog({ dir, logger: quiet });
  return {
    get log() {
      return current;
    },
    async reopen() {
      await current.close();
      current = await openFileLog({ dir, logger: quiet });
      return current;
    },
    async cleanup() {
      await current.close();
      rmSync(dir, { recursive: true, force: true });
    },
    enforceRetention: (log) => void (log as FileLog).enforceRetention(),
  };
});
