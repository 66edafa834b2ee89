/**
 * IoT monitoring: sensor readings from devices on sites; per-device one-minute windows, the latest
 * state of each site, and alerts when a device runs hot for a minute or reads far from its usual
 * values. Run: `kappa --data-dir .kappa-iot start --config examples/iot/kappa.config.ts`, then
 * `node --import tsx examples/iot/generate.ts`.
 */
import {
  Type,
  alertsTopic,
  anomaly,
  avg,
  count,
  defineApp,
  from,
  last,
  max,
  threshold,
  topic,
  tumbling,
  view,
} from 'kappa';

const Reading = Type.Object({
  device: Type.String(),
  site: Type.String(),
  temperature: Type.Number(),
  humidity: Type.Number({ minimum: 0, maximum: 100 }),
  ts: Type.Integer(),
});

export const readings = topic('readings', {
  partitions: 4,
  schema: Reading,
  key: (r) => r.device,
  time: (r) => r.ts,
  onInvalid: 'dlq',
});
const alerts = alertsTopic('alerts');

export default defineApp({
  topics: [readings, alerts],
  views: [
    view(
      'device_minutes',
      from(readings)
        .window(tumbling('1m', { outOfOrderness: '10s', allowedLateness: '2m' }))
        .groupBy((r) => ({ device: r.device }))
        .aggregate({
          avg_temperature: avg((r) => r.temperature),
          max_temperature: max((r) => r.temperature),
          readings: count(),
        }),
    ),
    view(
      'site_status',
      from(readings)
        .groupBy((r) => ({ site: r.site }))
        .aggregate({
          last_temperature: last((r) => r.temperature),
          hottest: max((r) => r.temperature),
          readings: count(),
        }),
    ),
    // The alerts as a table too: how many each device raised, by rule.
    view(
      'alert_counts',
      from(alerts)
        .groupBy((a) => ({ rule: a.rule, device: a.key }))
        .aggregate({ alerts: count(), last_value: last((a) => a.value ?? 0) }),
    ),
  ],
  outputs: [
    threshold('overheat', from(readings), {
      key: (r) => r.device,
      when: (r) => r.temperature > 80,
      for: '1m',
      value: (r) => r.temperature,
      severity: 'critical',
      message: (r, device) => `${device} at ${r.site} has been above 80 °C for a minute (now ${r.temperature} °C)`,
      to: alerts,
    }),
    anomaly('temperature_anomaly', from(readings), {
      key: (r) => r.device,
      value: (r) => r.temperature,
      method: 'zscore',
      window: 120,
      threshold: 5,
      minSamples: 30,
      to: alerts,
    }),
  ],
  // webhooks: [{ name: 'ops_pager', url: 'https://example.com/hooks/kappa', topic: 'alerts' }],
});
