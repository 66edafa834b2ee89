/**
 * The one catalogue of Kappa's errors. Every error a user can see carries a stable code from this
 * table, the HTTP status a server answers with, and whether retrying the same call can succeed.
 * `docs/errors.md` lists every code; `src/errors.test.ts` fails when the two drift apart.
 */

export const ERROR_CATALOGUE = {
  KAPPA_INVALID_ARGUMENT: {
    status: 400,
    retriable: false,
    summary: 'An option or argument has a value Kappa cannot use.',
  },
  KAPPA_INVALID_TOPIC_NAME: {
    status: 400,
    retriable: false,
    summary: "A topic name breaks Kafka's rule: 1-249 characters of [a-zA-Z0-9._-], and not '.' or '..'.",
  },
  KAPPA_TOPIC_EXISTS: { status: 409, retriable: false, summary: 'A topic with that name already exists.' },
  KAPPA_UNKNOWN_TOPIC: {
    status: 404,
    retriable: false,
    summary: 'No topic with that name exists in this data directory.',
  },
  KAPPA_INVALID_PARTITION: {
    status: 400,
    retriable: false,
    summary: 'The partition number is not one of the topic’s partitions.',
  },
  KAPPA_OFFSET_OUT_OF_RANGE: {
    status: 416,
    retriable: false,
    summary: 'The offset is before the first retained offset or after the end of the partition.',
  },
  KAPPA_INVALID_RECORD: {
    status: 400,
    retriable: false,
    summary: 'A record is malformed (for example a line that is not JSON, or a missing key field).',
  },
  KAPPA_RECORD_TOO_LARGE: {
    status: 413,
    retriable: false,
    summary: 'A record batch is larger than the largest batch a segment accepts.',
  },
  KAPPA_UNSUPPORTED_COMPRESSION: {
    status: 415,
    retriable: false,
    summary:
      'A record batch is compressed with a codec this Kappa cannot decode (Kafka defines 1 gzip, 2 snappy, 3 lz4, 4 zstd), so it was not stored.',
  },
  KAPPA_CORRUPT_DATA: {
    status: 500,
    retriable: false,
    summary:
      'Stored log data failed its checksum or structure check. Kappa never drops such data silently; run `kappa verify`.',
  },
  KAPPA_DATA_DIR_LOCKED: {
    status: 409,
    retriable: true,
    summary: 'Another running Kappa process is writing to this data directory.',
  },
  KAPPA_FENCED: {
    status: 409,
    retriable: false,
    summary:
      'Another Kappa process took over this task (its epoch moved on), so this process may no longer commit for it.',
  },
  KAPPA_LOG_UNAVAILABLE: {
    status: 503,
    retriable: true,
    summary:
      'The Kafka cluster holding the log cannot be reached or did not answer; nothing is known to have been appended.',
  },
  KAPPA_STORE_UNAVAILABLE: {
    status: 503,
    retriable: true,
    summary: 'The view store (PostgreSQL) cannot be reached; nothing was committed.',
  },
  KAPPA_READ_ONLY: {
    status: 405,
    retriable: false,
    summary: 'The log was opened read-only (for example by `kappa consume`), so it cannot be changed.',
  },
  KAPPA_LOG_CLOSED: { status: 503, retriable: true, summary: 'The log was closed while the call was in progress.' },
  KAPPA_DISK_FULL: {
    status: 503,
    retriable: true,
    summary: 'The disk holding the data directory is full; nothing was acknowledged.',
  },
  KAPPA_SCHEMA_VIOLATION: {
    status: 400,
    retriable: false,
    summary: "A record does not match its topic's schema; the message names the field and the reason.",
  },
  KAPPA_INVALID_SCHEMA: {
    status: 422,
    retriable: false,
    summary:
      'A schema (Avro, Protobuf or JSON Schema) does not parse or breaks a rule of its format; the message says where.',
  },
  KAPPA_CONFIG_INVALID: {
    status: 400,
    retriable: false,
    summary: 'The app config (kappa.config.ts or .js) does not load, or defines something Kappa cannot run.',
  },
  KAPPA_UNKNOWN_VIEW: { status: 404, retriable: false, summary: 'No view with that name (or version) exists.' },
  KAPPA_VIEW_CONFLICT: {
    status: 409,
    retriable: false,
    summary:
      'The view is not in a state that allows the change: a version exists with a different definition, the change would drop the live version, a build is already in progress, or there is no earlier version to roll back to.',
  },
  KAPPA_TIMEOUT: {
    status: 504,
    retriable: true,
    summary:
      'A running Kappa process did not answer in time (for example `kappa replay` while the `kappa start` it asks is stuck or has stopped).',
  },
  KAPPA_QUERY_NOT_READ_ONLY: {
    status: 400,
    retriable: false,
    summary: 'Queries are read-only; the SQL statement would change data.',
  },
  KAPPA_SQL_ERROR: {
    status: 400,
    retriable: false,
    summary: 'The SQL statement could not run (syntax error, unknown table or column).',
  },
  KAPPA_OUT_OF_ORDER_SEQUENCE: {
    status: 409,
    retriable: false,
    summary:
      "An idempotent producer's batch skips sequence numbers: records between its last appended record and this batch are missing, so nothing was appended.",
  },
  KAPPA_PRODUCER_FENCED: {
    status: 409,
    retriable: false,
    summary:
      'A newer instance of the same idempotent producer (a higher producer epoch) has appended since; appends with the older epoch are refused.',
  },
  KAPPA_IO_ERROR: {
    status: 500,
    retriable: false,
    summary: 'The operating system reported an I/O error while reading or writing the log.',
  },
  KAPPA_WORKER_FAILED: {
    status: 500,
    retriable: false,
    summary:
      'A worker thread of the processing engine crashed or a task in it failed; the engine stopped without committing the work in progress.',
  },
  KAPPA_UNAUTHENTICATED: {
    status: 401,
    retriable: false,
    summary:
      'The request has no bearer token, or one the server does not know; or a Kafka broker refused the SASL login of `--log`.',
  },
  KAPPA_FORBIDDEN: {
    status: 403,
    retriable: false,
    summary: "The request's token does not have the scope the route needs.",
  },
  KAPPA_NOT_FOUND: { status: 404, retriable: false, summary: 'No such HTTP route.' },
  KAPPA_BODY_TOO_LARGE: {
    status: 413,
    retriable: false,
    summary: 'The request body is larger than the server accepts; nothing was appended.',
  },
  KAPPA_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    retriable: false,
    summary: 'The request body has a content type the route does not take.',
  },
  KAPPA_OVERLOADED: {
    status: 429,
    retriable: true,
    summary: 'The server is ingesting as much as it can; nothing from the request was appended.',
  },
  KAPPA_IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    retriable: false,
    summary: 'An Idempotency-Key was sent again with a different body.',
  },
  KAPPA_URI_TOO_LONG: {
    status: 414,
    retriable: false,
    summary: 'A part of the URL path is longer than the server accepts.',
  },
  KAPPA_HEADERS_TOO_LARGE: {
    status: 431,
    retriable: false,
    summary: 'The request line and headers are larger than the server reads.',
  },
  KAPPA_REQUEST_TIMEOUT: {
    status: 408,
    retriable: true,
    summary: 'The request took too long to arrive, and the server stopped waiting for it.',
  },
  KAPPA_QUERY_TIMEOUT: {
    status: 400,
    retriable: false,
    summary: 'A SQL query ran past the time limit and was stopped.',
  },
  KAPPA_QUERY_RESULT_TOO_LARGE: {
    status: 413,
    retriable: false,
    summary:
      "A SQL query's result (or a value in it) is larger than a query may answer, or the query needed more memory than a query may use; it was stopped.",
  },
  KAPPA_QUERY_NOT_A_VIEW: {
    status: 403,
    retriable: false,
    summary:
      "A SQL query reads a table that is not a view (such as one of Kappa's own kappa_* tables); queries read only the views.",
  },
  KAPPA_INTERNAL: {
    status: 500,
    retriable: true,
    summary: 'The server failed in a way it did not expect; the details are in its log.',
  },
  KAPPA_NOT_READY: {
    status: 503,
    retriable: true,
    summary: 'The server is still recovering or catching up its live views.',
  },
} as const;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class KappaError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retriable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'KappaError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.retriable = ERROR_CATALOGUE[code].retriable;
    this.details = details;
  }

  /** The JSON body an HTTP server answers with: `{ error: { code, message, details } }`. */
  toJSON(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

export function isKappaError(err: unknown, code?: ErrorCode): err is KappaError {
  return err instanceof KappaError && (code === undefined || err.code === code);
}

/** Turns an operating-system error from a log write or read into a typed Kappa error. */
export function ioError(err: unknown, action: string, path: string): KappaError {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new KappaError(
      'KAPPA_DISK_FULL',
      `The disk is full: could not ${action} ${path}. Free some space (or lower retention) and retry.`,
      { path },
      err,
    );
  }
  return new KappaError(
    'KAPPA_IO_ERROR',
    `Could not ${action} ${path}: ${(err as Error)?.message ?? String(err)}`,
    { path, errno: code },
    err,
  );
}

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`, case-insensitive. */
function editDistance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

/**
 * The names among `candidates` closest to `name` (a typo of one of them: at most a third of its
 * letters wrong, at least one edit allowed), best first; none when nothing is close. For the
 * "did you mean …?" of an error message.
 */
export function closestNames(name: string, candidates: Iterable<string>, max = 3): string[] {
  const allowed = Math.max(1, Math.floor(name.length / 3));
  const scored: [string, number][] = [];
  for (const c of new Set(candidates)) {
    if (c === name) continue;
    const lower = c.toLowerCase();
    const d = lower === name.toLowerCase() ? 0 : editDistance(name.slice(0, 100), c.slice(0, 100));
    if (d <= allowed) scored.push([c, d]);
  }
  return scored
    .sort((x, y) => x[1] - y[1] || (x[0] < y[0] ? -1 : 1))
    .slice(0, max)
    .map(([c]) => c);
}
