/**
 * The schema registry's errors, in the Confluent Schema Registry's terms: an HTTP status and an
 * `error_code` (`{"error_code": 40401, "message": "..."}` on the wire), so Confluent clients in any
 * language recognise them. These are the registry API's answers, not Kappa's catalogue errors
 * (src/errors.ts): Kappa errors reaching the registry's routes (a log that is down, a bad token) are
 * translated by `asRegistryError`.
 */
import { KappaError } from '../errors.ts';

/** Confluent's error codes (io.confluent.kafka.schemaregistry.rest.exceptions.Errors), the ones this registry answers. */
export const REGISTRY_ERROR = {
  UNAUTHORIZED: { status: 401, code: 40101 },
  FORBIDDEN: { status: 403, code: 40301 },
  NOT_FOUND: { status: 404, code: 404 },
  SUBJECT_NOT_FOUND: { status: 404, code: 40401 },
  VERSION_NOT_FOUND: { status: 404, code: 40402 },
  SCHEMA_NOT_FOUND: { status: 404, code: 40403 },
  SUBJECT_SOFT_DELETED: { status: 404, code: 40404 },
  SUBJECT_NOT_SOFT_DELETED: { status: 404, code: 40405 },
  VERSION_SOFT_DELETED: { status: 404, code: 40406 },
  VERSION_NOT_SOFT_DELETED: { status: 404, code: 40407 },
  SUBJECT_COMPATIBILITY_NOT_CONFIGURED: { status: 404, code: 40408 },
  SUBJECT_MODE_NOT_CONFIGURED: { status: 404, code: 40409 },
  INCOMPATIBLE_SCHEMA: { status: 409, code: 409 },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, code: 415 },
  UNPROCESSABLE: { status: 422, code: 422 },
  INVALID_SCHEMA: { status: 422, code: 42201 },
  INVALID_VERSION: { status: 422, code: 42202 },
  INVALID_COMPATIBILITY_LEVEL: { status: 422, code: 42203 },
  INVALID_MODE: { status: 422, code: 42204 },
  OPERATION_NOT_PERMITTED: { status: 422, code: 42205 },
  REFERENCE_EXISTS: { status: 422, code: 42206 },
  INVALID_SUBJECT: { status: 422, code: 42208 },
  STORE_ERROR: { status: 500, code: 50001 },
  UNAVAILABLE: { status: 503, code: 50003 },
} as const;

export type RegistryErrorKind = keyof typeof REGISTRY_ERROR;

export class RegistryError extends Error {
  readonly kind: RegistryErrorKind;
  readonly status: number;
  readonly errorCode: number;

  constructor(kind: RegistryErrorKind, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'RegistryError';
    this.kind = kind;
    this.status = REGISTRY_ERROR[kind].status;
    this.errorCode = REGISTRY_ERROR[kind].code;
  }

  /** The body Confluent's registry answers with. */
  toJSON(): { error_code: number; message: string } {
    return { error_code: this.errorCode, message: this.message };
  }
}

/** Kappa's catalogue codes as the registry answers them; anything else of status 5xx is a store error. */
const FROM_KAPPA: Partial<Record<string, RegistryErrorKind>> = {
  KAPPA_INVALID_SCHEMA: 'INVALID_SCHEMA',
  KAPPA_UNAUTHENTICATED: 'UNAUTHORIZED',
  KAPPA_FORBIDDEN: 'FORBIDDEN',
  KAPPA_NOT_FOUND: 'NOT_FOUND',
  KAPPA_BODY_TOO_LARGE: 'UNPROCESSABLE',
  KAPPA_UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  KAPPA_NOT_READY: 'UNAVAILABLE',
  KAPPA_LOG_UNAVAILABLE: 'UNAVAILABLE',
  KAPPA_LOG_CLOSED: 'UNAVAILABLE',
  KAPPA_DISK_FULL: 'UNAVAILABLE',
};

/** Fastify's own request errors (FST_ERR_*), as the registry answers them. */
const FROM_FASTIFY: Partial<Record<string, [RegistryErrorKind, string]>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [
    'UNPROCESSABLE',
    'The request body is larger than the schema registry accepts (four times its largest schema, 1 MiB by default). Nothing was registered.',
  ],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [
    'UNSUPPORTED_MEDIA_TYPE',
    'Send the body as application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json or application/json.',
  ],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['UNPROCESSABLE', 'The request body is empty; send a JSON object.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['UNPROCESSABLE', 'The request body does not match its Content-Length.'],
};

/** Any error thrown in a registry route, as the registry answers it. */
export function asRegistryError(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  if (err instanceof KappaError) {
    const kind = FROM_KAPPA[err.code];
    if (kind !== undefined) return new RegistryError(kind, err.message, err);
    if (err.status < 500) {
      const e = new RegistryError('UNPROCESSABLE', err.message, err);
      return Object.assign(e, { status: err.status, errorCode: err.status });
    }
    return new RegistryError('STORE_ERROR', `The registry's storage failed: ${err.message}`, err);
  }
  const e = err as { code?: string; statusCode?: number; message?: string };
  const known = e.code === undefined ? undefined : FROM_FASTIFY[e.code];
  if (known !== undefined) return new RegistryError(known[0], known[1], err);
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
    const out = new RegistryError('UNPROCESSABLE', `The request was refused: ${(e.message ?? '').slice(0, 300)}`, err);
    return Object.assign(out, { status: e.statusCode, errorCode: e.statusCode });
  }
  return new RegistryError('STORE_ERROR', 'The schema registry failed to answer; the error is in the server log.', err);
}
