/** The application layer: webhooks (alerts and anomaly detectors are pipeline steps, in src/stream/alerts.ts). */
export { startWebhooks, type Webhooks, type WebhookStats } from './webhooks.ts';
