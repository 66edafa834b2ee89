/**
 * A config whose every record is dead-lettered (a typo in groupBy: the group key is undefined)
 * against a real `kappa start`: before, nothing was said at all. Now the dead-letter topic's first
 * record is logged once, with the view, the record and the reason, however many follow and over
 * however many flushes; /metrics counts every one (kappa_dead_letters_total{topic}).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { call } from '../support/http.ts';
import { startKappa, waitFor } from '../support/processes.ts';
import { tempDataProject, totalsConfig } from '../support/project.ts';

const TYPO = totalsConfig().replace('({ region: s.region })', '({ region: s.regoin })');
const NDJSON = 'application/x-ndjson';

test(
  'every record dead-lettered: one log line for the topic with the first reason, and /metrics counts them all',
  { timeout: 120_000 },
  async (t) => {
    const project = tempDataProject(t, 'kappa-dead-letters-', TYPO);
    const start = startKappa(t, [
      '--data-dir',
      project.dir,
      '--config',
      project.config,
      'start',
      '--port',
      '0',
      '--workers',
      '1',
      '--flush-interval-ms',
      '50',
    ]);
    const [, url] = await start.waitForOutput(/HTTP API on (\S+)/, { timeoutMs: 60_000 });
    const deadLetters = async (): Promise<number> => {
      const metrics = await call(url, 'GET', '/metrics');
      const m = /^kappa_dead_letters_total\{topic="sales\.dlq"\} (\d+)$/m.exec(metrics.text);
      return m ? Number(m[1]) : 0;
    };
    // Several requests, each flushed on its own, so one line per flush would show as several.
    let sent = 0;
    for (let i = 0; i < 5; i++) {
      const body = Array.from({ length: 20 }, (_, j) => JSON.stringify({ region: `r${j % 4}`, cents: i * 100 + j }));
      const res = await call(url, 'POST', '/v1/topics/sales/records', { body: `${body.join('\n')}\n`, type: NDJSON });
      assert.equal(res.status, 200, res.text);
      sent += body.length;
      const expected = sent;
      await waitFor('the dead letters in /metrics', async () => ((await deadLetters()) === expected ? true : null), {
        timeoutMs: 30_000,
        intervalMs: 100,
        child: start,
      });
    }
    assert.equal(await deadLetters(), 100);
    const lines = start.stderr.split('\n').filter((l) => l.includes('dead-letter topic sales.dlq'));
    assert.equal(lines.length, 1, start.stderr);
    assert.match(
      lines[0],
      /^kappa: warning: view "totals" could not process a record of topic "sales" \(partition \d, offset 0\) and sent it to the dead-letter topic sales\.dlq: pipeline: group key region is undefined/,
    );
    assert.match(lines[0], /kappa consume sales\.dlq --with-meta/);
    assert.equal((await start.stop()).code, 0, start.stderr);
  },
);
