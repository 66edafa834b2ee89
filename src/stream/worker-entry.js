// The file a worker thread of the engine starts from (see worker-pool.ts). Kappa ships TypeScript
// sources run through tsx, and a new thread starts without the module hooks of the thread that
// created it, so tsx is registered here before the worker module is imported, as bin/kappa.js does.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
