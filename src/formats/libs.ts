/**
 * avsc and protobufjs, each loaded the first time a schema or record of its format needs it. They
 * cost 70 and 110 ms of CPU to load on a slow machine (60-80 ms together on a fast one), and every
 * worker thread and every `kappa start` loads the formats modules whatever formats its topics use:
 * with static imports, an app of JSON topics paid both in each thread's start. (`import.meta.url`
 * is this file's own URL in a worker's bundle too, so the packages are found where installed.)
 */
import { createRequire } from 'node:module';
import type Avsc from 'avsc';
import type Protobuf from 'protobufjs';

const load = createRequire(import.meta.url);
let avscLib: typeof Avsc | undefined;
let protobufLib: typeof Protobuf | undefined;

export function avscjs(): typeof Avsc {
  return (avscLib ??= load('avsc') as typeof Avsc);
}

export function protobufjs(): typeof Protobuf {
  return (protobufLib ??= load('protobufjs') as typeof Protobuf);
}
