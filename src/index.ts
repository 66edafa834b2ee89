/** Kappa's public library API (re-exports only). */
export * from './log/index.ts';
export * from './stream/index.ts';
export * from './schema/index.ts';
export * from './view/index.ts';
export { KappaError, isKappaError, ERROR_CATALOGUE, type ErrorCode } from './errors.ts';
export { seededRandom } from './random.ts';
