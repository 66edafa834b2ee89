/**
 * Sensor readings for the IoT example, POSTed to a running `kappa start` as NDJSON:
 * `node --import tsx examples/iot/generate.ts [--url http://127.0.0.1:8080] [--rate 200] [--seconds 0]`.
 * 60 devices on 6 sites report about 21 °C with a little noise; now and then one overheats for two
 * minutes (an `overheat` alert) or reads one wild value (a `temperature_anomaly` alert).
 */
import { parseArgs } from 'node:util';
import { seededRandom } from '../../src/random.ts';

const { values } = parseArgs({ options: { url: { type: 'string', default: 'http://127.0.0.1:8080' }, rate: { type: 'string', default: '200' }, seconds: { type: 'string', default: '0' } } });
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const random = seededRandom(Date.now());
const DEVICES = 60;
const hotUntil = new Map<number, number>();

function reading(now: number): object {
  const d = Math.floor(random() * DEVICES);
  if (!hotUntil.has(d) && random() < 0.0005) hotUntil.set(d, now + 120_000);
  if ((hotUntil.get(d) ?? 0) < now) hotUntil.delete(d);
  const base = hotUntil.has(d) ? 86 : 21 + (d % 5) * 0.5;
  const wild = random() < 0.0002 ? 40 : 0;
  return { device: `dev-${String(d).padStart(2, '0')}`, site: `site-${d % 6}`, temperature: Math.round((base + wild + (random() - 0.5)) * 10) / 10, humidity: Math.round(40 + random() * 20), ts: now - Math.floor(random() * 2000) };
}

const started = Date.now();
let sent = 0;
for (;;) {
  const now = Date.now();
  if (seconds > 0 && now - started >= seconds * 1000) break;
  const n = Math.max(1, Math.round(rate / 10));
  const body = Array.from({ length: n }, () => JSON.stringify(reading(now))).join('\n') + '\n';
  const res = await fetch(`${values.url}/v1/topics/readings/records`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  if (!res.ok) throw new Error(`the server answered ${res.status}: ${await res.text()}`);
  sent += n;
  if (sent % (rate * 10) < n) process.stderr.write(`sent ${sent} readings\n`);
  await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - now))));
}
process.stderr.write(`sent ${sent} readings\n`);
