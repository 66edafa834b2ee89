// The file a worker thread of the engine starts from when the worker code could not be bundled
// (see worker-bundle.ts and worker-pool.ts). Kappa ships TypeScript sources run through tsx, and a
// new thread starts without the module hooks of the thread that created it, so tsx is registered
// here before the worker module is imported, as bin/kappa.js does.
import { pathToFileURL } from 'node:url';
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { runWorker } = await import('./worker.ts');
await runWorker(workerData.configPath, () => import(pathToFileURL(workerData.configPath).href), true);
