// Sends made-up orders to the running app (`npx kappa start`), the way a shop's backend would: a
// POST of NDJSON to /v1/topics/orders/records every 100 ms, until Ctrl-C or --seconds.
//
//   node generate.mjs [--url http://127.0.0.1:8080] [--rate 20] [--seconds 0]
/* global fetch */
import { parseArgs } from 'node:util';

const USAGE = `Sends made-up orders to a running \`npx kappa start\`.

Usage: node generate.mjs [--url URL] [--rate N] [--seconds S]

  --url URL      the app's HTTP API (default http://127.0.0.1:8080)
  --rate N       orders a second (default 20)
  --seconds S    stop after S seconds (default 0: until Ctrl-C)
`;
const COUNTRIES = ['DE', 'FR', 'NL', 'ES', 'IT', 'US'];
const PRODUCTS = ['book', 'lamp', 'mug', 'chair', 'desk'];
const TICK_MS = 100;

function options() {
  try {
    const { values } = parseArgs({
      options: {
        url: { type: 'string', default: 'http://127.0.0.1:8080' },
        rate: { type: 'string', default: '20' },
        seconds: { type: 'string', default: '0' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    const rate = Number(values.rate);
    const seconds = Number(values.seconds);
    if (!(rate > 0) || !(seconds >= 0)) throw new Error('--rate must be above 0 and --seconds 0 or more');
    return { url: values.url.replace(/\/+$/, ''), rate, seconds };
  } catch (err) {
    process.stderr.write(`generate.mjs: ${err.message}\n\n${USAGE}`);
    process.exit(2);
  }
}

let next = 0;
function order(now) {
  const customer = Math.floor(Math.random() * 200);
  return {
    orderId: `o-${now.toString(36)}-${next++}`,
    customer: `c${customer}`,
    country: COUNTRIES[customer % COUNTRIES.length],
    product: PRODUCTS[Math.floor(Math.random() * PRODUCTS.length)],
    amount: Math.round((5 + Math.random() * 95) * 100) / 100,
    ts: now - Math.floor(Math.random() * 2000), // a shop's clocks and queues: up to 2 s late
  };
}

async function send(url, n, now) {
  const body = Array.from({ length: n }, () => JSON.stringify(order(now))).join('\n') + '\n';
  let res;
  try {
    res = await fetch(`${url}/v1/topics/orders/records`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body,
    });
  } catch (err) {
    const why = err.cause?.code ?? err.message;
    throw new Error(`cannot reach ${url} (${why}): is \`npx kappa start\` running?`, { cause: err });
  }
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
}

async function run() {
  const { url, rate, seconds } = options();
  const started = Date.now();
  let sent = 0;
  let carry = 0;
  while (seconds === 0 || Date.now() - started < seconds * 1000) {
    const now = Date.now();
    carry += (rate * TICK_MS) / 1000;
    const n = Math.floor(carry);
    carry -= n;
    if (n > 0) {
      await send(url, n, now);
      sent += n;
      if (Math.floor(sent / (rate * 10)) !== Math.floor((sent - n) / (rate * 10)))
        process.stderr.write(`sent ${sent} orders\n`);
    }
    await new Promise((r) => setTimeout(r, Math.max(0, TICK_MS - (Date.now() - now))));
  }
  process.stderr.write(`sent ${sent} orders\n`);
}

run().catch((err) => {
  process.stderr.write(`generate.mjs: ${err.message}\n`);
  process.exit(1);
});
