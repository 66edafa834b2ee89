import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { openTestLog, partitionDir, segmentFiles, tempDir } from './test-helpers.ts';
import { type VerifyReport, verifyLog } from './verify.ts';

/** The report fails with exactly one finding: an error at byte `position` of `path`. */
function assertOnlyErrorAt(report: VerifyReport, path: string, position: number): void {
  assert.equal(report.ok, false);
  assert.deepEqual(
    report.findings.map((f) => [f.severity, f.file, f.position]),
    [['error', path, position]],
  );
}

describe('verifyLog', () => {
  let tmp: ReturnType<typeof tempDir>;

  beforeEach(async () => {
    tmp = tempDir();
    const log = await openTestLog(tmp.dir, { fsync: 'never' });
    await log.createTopic('t', { partitions: 2, segmentBytes: 1024 });
    for (let i = 0; i < 20; i++) await log.append('t', [{ value: `${i}`.padEnd(150, '.'), partition: 0 }]);
    await log.append('t', [
      { value: 'one', partition: 1 },
      { value: 'two', partition: 1 },
    ]);
    await log.close();
  });
  afterEach(() => tmp.cleanup());

  function segment(partition: number, i: number): string {
    return join(partitionDir(tmp.dir, 't', partition), segmentFiles(tmp.dir, 't', partition).at(i)!);
  }

  test('counts every topic, partition, segment, batch and record of an intact log and finds nothing', () => {
    const report = verifyLog({ dir: tmp.dir });
    assert.equal(report.ok, true);
    assert.deepEqual(report.findings, []);
    assert.equal(report.topics, 1);
    assert.equal(report.partitions, 2);
    assert.equal(report.segments, segmentFiles(tmp.dir, 't', 0).length + 1);
    assert.equal(report.batches, 21);
    assert.equal(report.records, 22);
  });

  test('reports a flipped byte in a closed segment as an error with file and byte position', () => {
    const path = segment(0, 0);
    const bytes = fs.readFileSync(path);
    bytes[100] ^= 0x10;
    fs.writeFileSync(path, bytes);
    const report = verifyLog({ dir: tmp.dir });
    assert.equal(report.ok, false);
    const [finding] = report.findings;
    assert.equal(finding.severity, 'error');
    assert.equal(finding.file, path);
    assert.equal(finding.position, 0);
    assert.match(finding.message, /CRC-32C mismatch/);
  });

  test('reports an unfinished last batch after a crash as a torn-tail warning, not an error', () => {
    fs.unlinkSync(join(tmp.dir, '.clean-shutdown'));
    fs.appendFileSync(segment(1, -1), Buffer.alloc(40, 1));
    const report = verifyLog({ dir: tmp.dir });
    assert.equal(report.ok, true);
    assert.equal(report.findings.length, 1);
    assert.equal(report.findings[0].severity, 'warning');
    assert.match(report.findings[0].message, /torn tail/);
  });

  test('reports an unfinished last batch after a clean shutdown as an error, as the next open will treat it', () => {
    const path = segment(1, -1);
    fs.truncateSync(path, fs.statSync(path).size - 5);
    assertOnlyErrorAt(verifyLog({ dir: tmp.dir }), path, 0);
  });

  test('reports a damaged length field in the last segment as an error even after a crash, since valid batches follow', () => {
    fs.unlinkSync(join(tmp.dir, '.clean-shutdown'));
    const path = segment(0, -1);
    const bytes = fs.readFileSync(path);
    assert.ok(bytes.length > 2 * 200, 'the active segment holds several batches');
    bytes[9] ^= 0x01; // the first batch now claims to be 64 KiB longer: it looks unfinished
    fs.writeFileSync(path, bytes);
    assertOnlyErrorAt(verifyLog({ dir: tmp.dir }), path, 0);
  });

  test('warns about a missing index file and errors on an index entry that points at no batch start', () => {
    const dir = partitionDir(tmp.dir, 't', 0);
    const [first, second] = segmentFiles(tmp.dir, 't', 0).map((f) => f.slice(0, 20));
    fs.unlinkSync(join(dir, `${first}.index`));
    const entry = Buffer.alloc(8);
    entry.writeUInt32BE(1, 0);
    entry.writeUInt32BE(5, 4);
    fs.writeFileSync(join(dir, `${second}.index`), entry);
    const report = verifyLog({ dir: tmp.dir });
    assert.equal(report.ok, false);
    assert.ok(report.findings.some((f) => f.severity === 'warning' && f.file.endsWith(`${first}.index`)));
    assert.ok(report.findings.some((f) => f.severity === 'error' && f.file.endsWith(`${second}.index`)));
  });

  test('reports unreadable topic metadata', () => {
    fs.writeFileSync(join(tmp.dir, 'topics', 't', 'topic.json'), '{ not json');
    const report = verifyLog({ dir: tmp.dir });
    assert.equal(report.ok, false);
    assert.match(report.findings[0].message, /topic metadata is unreadable/);
  });
});
