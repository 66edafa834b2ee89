/**
 * Sensor readings for the IoT example, POSTed to a running `kappa start` as NDJSON:
 * `node --import tsx examples/iot/generate.ts [--url http://127.0.0.1:8080] [--rate 200] [--seconds 0]`.
 * 60 devices on 6 sites report about 21 °C with a little noise; now and then one overheats for two
 * minutes (an `overheat` alert) or reads one wild value (a `temperature_anomaly` alert).
 */
import { postNdjson } from '../lib/post-ndjson.ts';

const random = Math.random;
const DEVICES = 60;
const hotUntil = new Map<number, number>();

function reading(now: number): object {
  const d = Math.floor(random() * DEVICES);
  if (!hotUntil.has(d) && random() < 0.0005) hotUntil.set(d, now + 120_000);
  if ((hotUntil.get(d) ?? 0) < now) hotUntil.delete(d);
  const base = hotUntil.has(d) ? 86 : 21 + (d % 5) * 0.5;
  const wild = random() < 0.0002 ? 40 : 0;
  return {
    device: `dev-${String(d).padStart(2, '0')}`,
    site: `site-${d % 6}`,
    temperature: Math.round((base + wild + (random() - 0.5)) * 10) / 10,
    humidity: Math.round(40 + random() * 20),
    ts: now - Math.floor(random() * 2000),
  };
}

await postNdjson({
  topic: 'readings',
  noun: 'readings',
  rateDefault: 200,
  script: 'examples/iot/generate.ts',
  make: reading,
});
