import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

/** Whether a file of the installed package `name` has been loaded into this process. */
const loaded = (name: string): boolean =>
  Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes(`/node_modules/${name}/`));

test('avsc and protobufjs load when a schema of their format is first parsed, not with the formats modules', async () => {
  const { CODECS } = await import('./index.ts');
  // This file runs in its own process: nothing else has loaded them.
  assert.equal(loaded('avsc'), false, 'importing the formats modules loaded avsc');
  assert.equal(loaded('protobufjs'), false, 'importing the formats modules loaded protobufjs');

  CODECS.JSON.parse('{"type":"object","properties":{"n":{"type":"number"}}}');
  assert.equal(loaded('avsc') || loaded('protobufjs'), false, 'a JSON schema loaded a codec library');

  const avro = CODECS.AVRO.parse('{"type":"record","name":"Sale","fields":[{"name":"cents","type":"long"}]}');
  assert.equal(loaded('avsc'), true);
  assert.equal(loaded('protobufjs'), false);
  assert.ok(avro);

  CODECS.PROTOBUF.parse('syntax = "proto3"; message Sale { int64 cents = 1; }');
  assert.equal(loaded('protobufjs'), true);
});
