/**
 * Table cells for people (`kappa query`): times in time columns as ISO, fractions without binary
 * noise, everything else as it is.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cellText } from './table.ts';

test('cellText shows epoch-ms times in time columns as ISO times, and other whole numbers as they are', () => {
  const ms = Date.UTC(2026, 5, 1, 12, 30);
  for (const column of ['window_start', 'window_end', 'ts', 'atMs', 'created_at', 'startedAtMs'])
    assert.equal(cellText(column, ms), '2026-06-01T12:30:00.000Z', column);
  assert.equal(cellText('orders', ms), String(ms), 'not a time column');
  assert.equal(cellText('window_start', 42), '42', 'not a plausible time');
  assert.equal(cellText('total', 7), '7');
});

test('cellText drops float noise but keeps real digits, and shows NULL and text', () => {
  assert.equal(cellText('total', 945504.3599999986), '945504.36');
  assert.equal(cellText('x', 0.1 + 0.2), '0.3');
  assert.equal(cellText('x', 1.23e-9), '1.23e-9');
  assert.equal(cellText('x', 1234.56789), '1234.56789');
  assert.equal(cellText('x', null), 'NULL');
  assert.equal(cellText('region', 'north'), 'north');
});
