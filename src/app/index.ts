/**
 * The application layer, what runs beside the engine in `kappa start` (`kappa/app` to embedding
 * code): webhooks. Alerts and anomaly detectors are pipeline steps, in src/stream/alerts.ts.
 */
export { startWebhooks, type Webhooks, type WebhookStats } from './webhooks.ts';
