/**
 * The cooldown per key of alert rules, on the detectors' stateful steps directly: an anomaly
 * detector raises one alert per odd episode by default (not one per odd reading), a threshold
 * fires once per episode and with a cooldown once per cooldown, and each key cools down alone.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { type Alert, alertsTopic, anomaly, threshold } from './alerts.ts';
import { type OutputDef, from, topic } from './dsl.ts';

interface Reading {
  device: string;
  temperature: number;
}

const readings = topic('readings', {
  schema: Type.Object({ device: Type.String(), temperature: Type.Number() }),
  key: (r) => r.device,
});
const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);

/** Runs the output's detector over readings (one every 10 s of event time) and returns its alerts. */
function run(output: OutputDef, input: Reading[]): Alert[] {
  const op = output.stream.ops.at(-1) as {
    kind: string;
    fn: (s: Map<unknown, unknown>, v: unknown, t: number) => Iterable<unknown>;
  };
  assert.equal(op.kind, 'stateful');
  const state = new Map<unknown, unknown>();
  return input.flatMap((r, i) => [...op.fn(state, r, T0 + i * 10_000)] as Alert[]);
}

/** 30 calm readings per device, then `hot` readings of 95 °C (an episode), then calm again. */
function episode(device: string, hot: number, calmAfter = 0): Reading[] {
  const calm = (i: number): Reading => ({ device, temperature: 20 + (i % 5) / 10 });
  return [
    ...Array.from({ length: 30 }, (_, i) => calm(i)),
    ...Array.from({ length: hot }, () => ({ device, temperature: 95 })),
    ...Array.from({ length: calmAfter }, (_, i) => calm(i)),
  ];
}

const alerts = alertsTopic();
const detector = (cooldown?: '0s' | '5m' | 0) =>
  anomaly('odd', from(readings), {
    key: (r) => r.device,
    value: (r) => r.temperature,
    threshold: 3,
    minSamples: 20,
    ...(cooldown === undefined ? {} : { cooldown }),
    to: alerts,
  });

test('an anomaly episode raises one alert per key by default, one per odd reading without a cooldown', () => {
  const input = episode('d1', 7);
  const every = run(detector(0), input);
  assert.ok(every.length > 1, `without a cooldown each odd reading fires (${every.length})`);
  const once = run(detector(), input);
  assert.equal(once.length, 1);
  assert.equal(once[0].atMs, T0 + 30 * 10_000, 'the first odd reading fires');
});

test('an anomaly fires again once the cooldown has passed, and each key cools down on its own', () => {
  // d1: odd for 70 s, calm for 5 minutes (30 readings), then far off again: two alerts.
  const d1 = [...episode('d1', 7, 30), { device: 'd1', temperature: 500 }];
  assert.equal(run(detector('5m'), d1).length, 2);
  // d2 odd while d1 is cooling down: d2 gets its own alert.
  const both = episode('d1', 3).flatMap((r, i) => [r, { device: 'd2', temperature: episode('d2', 3)[i].temperature }]);
  assert.deepEqual(
    run(detector(), both).map((a) => a.key),
    ['d1', 'd2'],
  );
});

test('a threshold fires once per episode; with a cooldown a flapping condition fires once per cooldown', () => {
  const rule = (cooldown?: '10m') =>
    threshold('hot', from(readings), {
      key: (r) => r.device,
      when: (r) => r.temperature > 80,
      ...(cooldown === undefined ? {} : { cooldown }),
      to: alerts,
    });
  // Hot and cool in turn, every 10 s, for 20 minutes: 60 episodes.
  const flapping = Array.from({ length: 120 }, (_, i) => ({ device: 'd1', temperature: i % 2 === 0 ? 90 : 20 }));
  assert.equal(run(rule(), flapping).length, 60);
  const cooled = run(rule('10m'), flapping);
  assert.deepEqual(
    cooled.map((a) => (a.atMs - T0) / 60_000),
    [0, 10],
  );
});

test('a cooldown that is not a duration is refused, naming the rule', () => {
  assert.throws(
    () =>
      anomaly('odd', from(readings), {
        key: (r) => r.device,
        value: (r) => r.temperature,
        cooldown: 'soon' as '5m',
        to: alerts,
      }),
    /cooldown of anomaly detector "odd" "soon" is not a duration/,
  );
});
