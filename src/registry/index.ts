/**
 * Kappa's schema registry (issue 17): the Confluent Schema Registry's model and REST API over the
 * `_schemas` topic of Kappa's log. `Registry.open({ log, codecs })` opens it; `registryRoutes` is the
 * Fastify plugin the server mounts under `/schemas`.
 */
export { Registry, SCHEMA_BYTES_MAX_DEFAULT, type RegistryOptions, type SubjectVersion } from './registry.ts';
export { registryRoutes, type RegistryRoutesOptions, type RegistryScope } from './http.ts';
export { RegistryError, REGISTRY_ERROR, asRegistryError, type RegistryErrorKind } from './errors.ts';
export { compatibilityMessages, versionsToCheck, type PreviousVersion } from './compatibility.ts';
export { SCHEMAS_TOPIC, REGISTRY_MODES, type RegistryMode } from './store.ts';
export type { SchemaInput } from './input.ts';
