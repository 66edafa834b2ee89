/**
 * Health and metrics: `GET /healthz` (the process answers), `GET /readyz` (the live views have
 * caught up with the log; 503 until then), both open to anyone who can reach the server, and
 * `GET /metrics` (Prometheus text, metrics.ts), which needs `admin`.
 */
import type { FastifyInstance } from 'fastify';
import { KappaError } from '../errors.ts';

export async function healthRoutes(fastify: FastifyInstance): Promise<void> {
  const { engine, metrics } = fastify.kappa;
  fastify.get('/healthz', { config: { scope: null } }, async () => ({ status: 'ok' }));
  fastify.get('/readyz', { config: { scope: null } }, async () => {
    if (engine !== null && !engine.caughtUp)
      throw new KappaError('KAPPA_NOT_READY', 'The live views are still catching up with the log.', {});
    return { status: 'ready' };
  });
  fastify.get('/metrics', { config: { scope: 'admin' } }, async (_req, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}
