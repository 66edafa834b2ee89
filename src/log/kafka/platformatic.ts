/**
 * The three things KafkaLog takes from @platformatic/kafka: Connection (framing, correlation ids,
 * TLS, SASL), Writer, and createAPI. They are loaded on first use from the package's own files
 * rather than from its index. The index also builds every client's option validators (ajv) as it
 * loads, which cost about 1 s of CPU per thread on a 2-core machine. That cost was paid by every
 * `kappa start --log kafka://…` and each of its worker threads, and by `kappa lag` and `kappa views`
 * with `--log`.
 *
 * The package exports only its index, so its files are found next to the index's resolved path. A
 * package laid out differently (another version) is loaded through its index, as before. In a
 * worker bundle `import.meta.url` is this file's own URL (worker-bundle.ts), so the same lookup
 * works there, and the package's files are loaded from node_modules, not bundled.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Platformatic from '@platformatic/kafka';

export type Parts = Pick<typeof Platformatic, 'Connection' | 'Writer' | 'createAPI'>;

/** The package's name in a variable, so that a bundler leaves the fallback import to run time. */
const PACKAGE = '@platformatic/kafka';
const FILES = { Connection: 'network/connection.js', Writer: 'protocol/writer.js', createAPI: 'apis/definitions.js' };

let loading: Promise<Parts> | null = null;
/** Set once `platformatic()` has resolved: code that runs only after a connection exists reads it. */
export let loaded: Parts | null = null;

export function platformatic(): Promise<Parts> {
  loading ??= load().then((parts) => (loaded = parts));
  return loading;
}

async function load(): Promise<Parts> {
  try {
    const dir = dirname(createRequire(import.meta.url).resolve(PACKAGE));
    const [c, w, a] = await Promise.all(
      Object.values(FILES).map((f) => import(pathToFileURL(join(dir, f)).href) as Promise<Record<string, unknown>>),
    );
    if (typeof c.Connection === 'function' && typeof w.Writer === 'function' && typeof a.createAPI === 'function')
      return { Connection: c.Connection, Writer: w.Writer, createAPI: a.createAPI } as Parts;
  } catch {
    // another layout: the index below
  }
  return (await import(PACKAGE)) as Parts;
}
