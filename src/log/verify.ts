/**
 * `verifyLog`: a read-only check of every byte of a data directory, for `kappa verify`. It opens
 * nothing for writing and takes no lock, so it can run beside a live writer.
 *
 * Checked: topic metadata parses; every batch of every segment (length, magic, CRC-32C, record
 * count, offset continuity inside and across segments, and the records inside: a compressed batch
 * is decompressed and its records checked as an uncompressed one's); closed segments' index entries point at
 * batch starts with the right offsets. An unfinished batch at the very end of a partition, with no
 * valid batch after it, is a torn tail (a write that had not been acknowledged), reported as a
 * warning: the next writable open cuts it. After a clean shutdown (`.clean-shutdown` present) it is
 * an error, as recovery treats it. Anything else is an error naming the file and byte position.
 */
import { join } from 'node:path';
import { type LogFs, defaultFs } from './fs.ts';
import { OFFSET_INDEX_ENTRY_BYTES, OffsetIndex } from './offset-index.ts';
import { checkRecords } from './record-batch.ts';
import { LogSegment } from './segment.ts';
import type { TopicInfo } from './types.ts';

export interface VerifyFinding {
  severity: 'error' | 'warning';
  topic: string;
  partition: number | null;
  file: string;
  position: number | null;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  topics: number;
  partitions: number;
  segments: number;
  batches: number;
  records: number;
  bytes: number;
  findings: VerifyFinding[];
}

export function verifyLog(opts: { dir: string; fs?: LogFs }): VerifyReport {
  const fs = opts.fs ?? defaultFs;
  const report: VerifyReport = {
    ok: true,
    topics: 0,
    partitions: 0,
    segments: 0,
    batches: 0,
    records: 0,
    bytes: 0,
    findings: [],
  };
  const topicsDir = join(opts.dir, 'topics');
  if (!fs.existsSync(topicsDir)) return report;
  // After a clean close every byte was durable, so an unfinished last batch is damage, exactly as
  // the next writable open will treat it. (A running writer removes the marker when it opens.)
  const cleanShutdown = fs.existsSync(join(opts.dir, '.clean-shutdown'));
  for (const name of fs.readdirSync(topicsDir).sort()) {
    const metaPath = join(topicsDir, name, 'topic.json');
    let info: TopicInfo;
    try {
      info = JSON.parse(fs.readFileSync(metaPath, 'utf8')) as TopicInfo;
      if (!Number.isInteger(info.partitions) || info.partitions < 1)
        throw new Error(`partition count ${info.partitions} is invalid`);
    } catch (err) {
      report.findings.push({
        severity: 'error',
        topic: name,
        partition: null,
        file: metaPath,
        position: null,
        message: `topic metadata is unreadable: ${(err as Error).message}`,
      });
      continue;
    }
    report.topics++;
    for (let p = 0; p < info.partitions; p++)
      verifyPartition(fs, join(topicsDir, name, String(p)), name, p, report, cleanShutdown);
  }
  report.ok = report.findings.every((f) => f.severity !== 'error');
  return report;
}

function verifyPartition(
  fs: LogFs,
  dir: string,
  topic: string,
  partition: number,
  report: VerifyReport,
  cleanShutdown: boolean,
): void {
  report.partitions++;
  const add = (severity: VerifyFinding['severity'], file: string, position: number | null, message: string): void => {
    report.findings.push({ severity, topic, partition, file, position, message });
  };
  if (!fs.existsSync(dir)) {
    add('error', dir, null, 'partition directory is missing');
    return;
  }
  const bases = fs
    .readdirSync(dir)
    .filter((n) => /^\d{20}\.log$/.test(n))
    .map((n) => Number(n.slice(0, 20)))
    .sort((a, b) => a - b);
  if (bases.length === 0) {
    add('error', dir, null, 'partition has no segment files');
    return;
  }
  for (let i = 0; i < bases.length; i++) {
    const last = i === bases.length - 1;
    const seg = LogSegment.open(fs, dir, bases[i], false);
    try {
      report.segments++;
      const starts = new Map<number, number>();
      const scan = seg.scan(0, bases[i], seg.sizeBytes, (b, chunk, rel) => {
        report.batches++;
        report.records += b.lastOffset - b.baseOffset + 1;
        report.bytes += b.size;
        starts.set(b.position, b.baseOffset);
        const problem = checkRecords(chunk.subarray(rel, rel + b.size));
        if (problem)
          add(
            'error',
            seg.logPath,
            b.position,
            `the records of the batch at offset ${b.baseOffset} cannot be read: ${problem}`,
          );
      });
      if (scan.problem) {
        // As recovery decides: a torn tail is a problem in the last segment, after a crash, with no
        // valid batch after it (a damaged length field also makes a batch look unfinished).
        const torn = last && !cleanShutdown && seg.findValidBatchAfter(scan.problem.position, seg.sizeBytes) === null;
        if (torn) {
          add(
            'warning',
            seg.logPath,
            scan.problem.position,
            `torn tail of ${seg.sizeBytes - scan.problem.position} bytes (${scan.problem.detail}): an unfinished, unacknowledged write that is cut off the next time the log is opened for writing`,
          );
        } else {
          add(
            'error',
            seg.logPath,
            scan.problem.position,
            `${scan.problem.detail} (offset ${scan.nextOffset}); the data from here on cannot be read`,
          );
        }
      } else if (!last && scan.nextOffset !== bases[i + 1]) {
        add(
          'error',
          seg.logPath,
          seg.sizeBytes,
          `segment ends at offset ${scan.nextOffset - 1} but the next segment starts at ${bases[i + 1]}`,
        );
      }
      if (!last) verifyIndex(fs, seg, starts, add);
    } finally {
      seg.close();
    }
  }
}

function verifyIndex(
  fs: LogFs,
  seg: LogSegment,
  starts: Map<number, number>,
  add: (s: VerifyFinding['severity'], f: string, p: number | null, m: string) => void,
): void {
  if (!fs.existsSync(seg.indexPath)) {
    add('warning', seg.indexPath, null, 'index file is missing; it is rebuilt from the segment when needed');
    return;
  }
  const index = OffsetIndex.load(fs.readFileSync(seg.indexPath), seg.sizeBytes);
  if (!index) {
    add('warning', seg.indexPath, null, 'index file is implausible; it is rebuilt from the segment when needed');
    return;
  }
  const buf = index.toBuffer();
  for (let i = 0; i < index.length; i++) {
    const rel = buf.readUInt32BE(i * OFFSET_INDEX_ENTRY_BYTES);
    const position = buf.readUInt32BE(i * OFFSET_INDEX_ENTRY_BYTES + 4);
    if (starts.get(position) !== seg.baseOffset + rel) {
      add(
        'error',
        seg.indexPath,
        i * OFFSET_INDEX_ENTRY_BYTES,
        `index entry ${i} says offset ${seg.baseOffset + rel} starts at byte ${position}, but no batch with that offset starts there; delete the index file to have it rebuilt`,
      );
      return;
    }
  }
}
