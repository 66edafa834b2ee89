/** Kappa's public library API (re-exports only). */
export * from './log/index.ts';
export { KappaError, isKappaError, ERROR_CATALOGUE, type ErrorCode } from './errors.ts';
export { seededRandom } from './random.ts';
