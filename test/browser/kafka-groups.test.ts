/**
 * The dashboard's Kafka consumer groups in a real browser: hidden while no group exists; once a
 * kafkajs group has committed part of a topic, the section shows the group, its state, its member
 * and its lag, the partitions on expand, and the lag moving as records arrive, without a reload
 * (through the page's one event stream).
 *
 * It needs Debian's chromium, so `npm test` skips it and `npm run test:all` runs it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { CHROMIUM, launchChromium } from '../support/browser.ts';
import { defer } from '../support/cleanup.ts';
import { openDashboard, shot, waitForText } from '../support/dashboard-page.ts';
import { requireDebianPackage } from '../support/debian.ts';
import { startKappaWithKafka } from '../support/kafka-clients.ts';
import { waitFor } from '../support/processes.ts';

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';

test(
  'the dashboard lists a Kafka consumer group with its state, member and lag, live, and its partitions on expand',
  { timeout: 180_000 },
  async (t) => {
    const chromiumPath = requireDebianPackage(t, CHROMIUM);
    if (chromiumPath === null) return;
    const kappa = await startKappaWithKafka(t, { topics: [{ name: 'orders', partitions: 2 }] });
    const browser = await launchChromium(chromiumPath);
    defer(t, () => browser.close());
    const { page, errors, streams } = await openDashboard(browser, kappa.url);
    await waitForText(page, '#status', /^live/, 30_000);
    assert.equal(await page.locator('#consumer-groups-section').isVisible(), false, 'hidden without groups');

    const kafka = new Kafka({ brokers: [kappa.bootstrap], clientId: 'billing-app', logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    defer(t, () => producer.disconnect());
    const send = (partition: number, n: number) =>
      producer.send({
        topic: 'orders',
        messages: Array.from({ length: n }, (_, i) => ({ partition, value: `o${i}` })),
      });
    await send(0, 10);
    await send(1, 6);
    const consumer = kafka.consumer({ groupId: 'billing', heartbeatInterval: 500, maxWaitTimeInMs: 200 });
    await consumer.connect();
    defer(t, () => consumer.disconnect());
    await consumer.subscribe({ topic: 'orders', fromBeginning: true });
    let received = 0;
    await consumer.run({ autoCommit: false, eachMessage: async () => void received++ });
    await waitFor('the consumer to read all 16 records', async () => (received === 16 ? true : null), {
      timeoutMs: 60_000,
      intervalMs: 100,
      child: kappa.child,
    });
    await consumer.commitOffsets([
      { topic: 'orders', partition: 0, offset: '4' },
      { topic: 'orders', partition: 1, offset: '2' },
    ]);

    // The section appears by itself: the group, Stable, one member, 6 + 4 records behind.
    const row = '#consumer-groups tbody tr[data-group="billing"][data-topic="orders"]';
    await page.locator(row).waitFor({ timeout: 15_000 });
    assert.equal(await page.locator('#consumer-groups-section').isVisible(), true);
    const cells = async (sel: string): Promise<string[]> =>
      (await page.locator(`${sel} > td`).allTextContents()).map((s) => s.trim());
    await waitFor(
      'the group row to read Stable, 1 member, lag 10',
      async () => {
        const c = await cells(row);
        return c.slice(1).join('|') === 'Stable|1|orders|2|10' ? c : null;
      },
      { timeoutMs: 15_000, intervalMs: 200, child: kappa.child },
    );

    // Expanded, the partitions: committed offset, log end, lag and the consumer that owns each.
    await page.locator(`${row} button.expand`).click();
    const partition = (p: number) => `#consumer-groups .group-partitions tr[data-partition="${p}"]`;
    await page.locator(partition(0)).waitFor({ timeout: 5_000 });
    assert.deepEqual((await cells(partition(0))).slice(0, 4), ['0', '4', '10', '6']);
    assert.deepEqual((await cells(partition(1))).slice(0, 4), ['1', '2', '6', '4']);
    assert.match((await cells(partition(0)))[4]!, /^billing-app \(/);
    assert.equal(await page.locator(`${row} button.expand`).getAttribute('aria-expanded'), 'true');

    // Records produced later raise the lag on the page, and the partitions stay expanded across redraws.
    await send(0, 5);
    await waitFor(
      'the lag to follow the new records',
      async () => ((await cells(row))[5] === '15' && (await cells(partition(0)))[3] === '11' ? true : null),
      { timeoutMs: 15_000, intervalMs: 200, child: kappa.child },
    );
    await shot(page, 'kafka-consumer-groups', '#consumer-groups-section');
    assert.equal(streams.length, 1, `one event stream: ${streams.join(', ')}`);
    assert.deepEqual(errors, [], 'no errors in the page');
  },
);
