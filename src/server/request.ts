/** Small readers of a request's headers and query parameters, shared by the hooks and the routes. */
import type { FastifyRequest } from 'fastify';
import { KappaError } from '../errors.ts';

export function contentType(req: FastifyRequest): string {
  const raw = req.headers['content-type'];
  if (raw === 'application/json') return raw; // the common case, without the string work below
  return String(raw ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
}

export function headerValue(req: FastifyRequest, name: string): string | null {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return typeof s === 'string' && s !== '' ? s : null;
}

export function wantsEventStream(req: FastifyRequest): boolean {
  return String(req.headers.accept ?? '').includes('text/event-stream');
}

/** A query parameter that must be a whole number of at least `min` (400 otherwise). */
export function wholeNumber(value: string, name: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min)
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `${name} must be a whole number of at least ${min}, not "${value.slice(0, 50)}".`,
      { [name]: value.slice(0, 50) },
    );
  return n;
}
