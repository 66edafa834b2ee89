/**
 * Kappa's public API, `import { ... } from 'kappa'`: the pipeline DSL a `kappa.config.ts` needs
 * (topics, streams, views, outputs, aggregates, windows, alerts, defineApp), TypeBox's `Type` for
 * schemas, and Kappa's error type. Re-exports only.
 *
 * Code that embeds Kappa uses the subpath exports of package.json instead:
 * - `kappa/log`: the `Log` port and the embedded file log (`openFileLog`, `openLog`, `verifyLog`).
 * - `kappa/view`: the `ViewStore` and `ControlStore` ports; `kappa/sqlite`: their SQLite adapter.
 * - `kappa/engine`: the `Engine`, `loadApp`, and the DSL again.
 * - `kappa/server`: the HTTP server (`startServer`, `buildServer`) and its tokens.
 * - `kappa/schema`: record schemas (`compileSchema`); `kappa/app`: webhooks; `kappa/errors`: the
 *   error catalogue.
 */
export * from './stream/dsl-api/index.ts';
export { Type, type Static, type TSchema } from '@sinclair/typebox';
export { KappaError, isKappaError, type ErrorCode } from './errors.ts';
