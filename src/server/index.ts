/** The HTTP server: ingestion, queries, live subscriptions, pipelines, metrics, auth. */
export { startServer, buildServer, type ServerOptions, type KappaServer, type RouteScope } from './server.ts';
export { hashToken, newToken, checkTokens, authenticate, hasScope, type Principal } from './auth.ts';
