/**
 * The schema registry over HTTP: the subset of the Confluent Schema Registry REST API that clients
 * and serializers use, as a Fastify plugin the server mounts under `/schemas` (so a Confluent
 * serializer is pointed at `http://host:port/schemas`).
 *
 *   GET    /subjects                                 ?deleted=true  ?subjectPrefix=
 *   GET    /subjects/:subject/versions               ?deleted=true
 *   GET    /subjects/:subject/versions/:version      (a number, or latest)  [/schema: the text alone]
 *   POST   /subjects/:subject/versions               register: {"schema","schemaType","references"} → {"id"}
 *   POST   /subjects/:subject                        lookup: the version holding that schema
 *   DELETE /subjects/:subject[/versions/:version]    ?permanent=true (after a soft delete)
 *   GET    /schemas/ids/:id                          [/schema, /versions, /subjects]
 *   GET    /schemas/types
 *   GET|PUT /config, GET|PUT|DELETE /config/:subject  {"compatibility": "BACKWARD"}
 *   GET|PUT /mode,   GET|PUT|DELETE /mode/:subject    {"mode": "READWRITE"}
 *   POST   /compatibility/subjects/:subject/versions[/:version]   ?verbose=true → messages
 *
 * Bodies are JSON sent as application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json
 * or application/json; answers use the type the client accepts (vnd.schemaregistry.v1+json unless
 * it asks for another). Errors are Confluent's `{"error_code": 40401, "message": "..."}` (errors.ts):
 * the plugin has its own error and not-found handlers and body parser, in its own encapsulated
 * context, so the rest of the server's error format does not reach these routes.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError, asRegistryError } from './errors.ts';
import { checkSubject, flag, levelInput, modeInput, parseId, parseVersion, schemaInput } from './input.ts';
import { type Registry, SCHEMA_BYTES_MAX_DEFAULT, type SubjectVersion } from './registry.ts';
import type { SchemaEntry } from './state.ts';

/** Who may call a route: a scope, a scope computed from the request, or null for anyone. */
export type RegistryScope = string | ((req: FastifyRequest) => string) | null;

export interface RegistryRoutesOptions {
  /** The registry, opened on first use. */
  registry: () => Promise<Registry>;
  /** The scope of the routes that only read. */
  readScope: RegistryScope;
  /** The scope of the routes that register, delete or change settings. */
  writeScope: RegistryScope;
  /** Largest schema text, in bytes: the registry's `schemaBytesMax` (default 1 MiB); bounds the body read. */
  schemaBytesMax?: number;
  /** Told about a 5xx error (the server's log). */
  logError?: (err: unknown) => void;
}

const MEDIA_TYPES = [
  'application/vnd.schemaregistry.v1+json',
  'application/vnd.schemaregistry+json',
  'application/json',
];
/** Room for JSON escapes around the largest schema text. */
const BODY_OVERHEAD_BYTES = 64 * 1024;

type Params = Record<string, string>;

/** The content type of an answer: the first of the registry's types the request accepts. */
function answerType(req: FastifyRequest): string {
  const accept = req.headers.accept ?? '';
  return MEDIA_TYPES.find((t) => accept.includes(t)) ?? MEDIA_TYPES[0];
}

function answer(req: FastifyRequest, reply: FastifyReply, body: unknown, status = 200): FastifyReply {
  return reply.code(status).type(answerType(req)).send(JSON.stringify(body));
}

/** A schema as Confluent writes it: schemaType left out for Avro, references when there are some. */
function schemaJson(s: SchemaEntry | SubjectVersion): Record<string, unknown> {
  return {
    ...(s.schemaType === 'AVRO' ? {} : { schemaType: s.schemaType }),
    ...(s.references.length > 0 ? { references: s.references } : {}),
    schema: s.schema,
  };
}

function versionJson(v: SubjectVersion): Record<string, unknown> {
  return { subject: v.subject, version: v.version, id: v.id, ...schemaJson(v) };
}

export async function registryRoutes(fastify: FastifyInstance, opts: RegistryRoutesOptions): Promise<void> {
  setUp(fastify, opts);
  subjectRoutes(fastify, opts);
  idRoutes(fastify, opts);
  settingRoutes(fastify, opts, 'config');
  settingRoutes(fastify, opts, 'mode');
  compatibilityRoutes(fastify, opts);
}

/** Body parser, error and not-found handlers of this context only. */
function setUp(fastify: FastifyInstance, opts: RegistryRoutesOptions): void {
  fastify.removeAllContentTypeParsers();
  // A schema's text is a JSON string in the body: escapes can make it longer than the text. Bodies
  // past this are refused while they are read; a schema text past schemaBytesMax once parsed.
  const bodyLimit = 4 * (opts.schemaBytesMax ?? SCHEMA_BYTES_MAX_DEFAULT) + BODY_OVERHEAD_BYTES;
  fastify.addContentTypeParser(MEDIA_TYPES, { parseAs: 'string', bodyLimit }, (_req, body, done) => {
    // Clients send the content type on every request, a DELETE's empty body included.
    if ((body as string).trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      done(
        new RegistryError(
          'UNPROCESSABLE',
          `The request body is not valid JSON: ${(err as Error).message.slice(0, 200)}`,
          err,
        ),
      );
    }
  });
  fastify.setErrorHandler((err, req, reply) => {
    const e = asRegistryError(err);
    if (e.status >= 500 && e.status !== 503) opts.logError?.(err);
    return answer(req, reply, e.toJSON(), e.status);
  });
  fastify.setNotFoundHandler((req, reply) => {
    void answer(
      req,
      reply,
      {
        error_code: 404,
        message: `HTTP 404 Not Found: the schema registry has no route ${req.method} ${req.url.split('?')[0]}.`,
      },
      404,
    );
  });
}

function subjectRoutes(fastify: FastifyInstance, opts: RegistryRoutesOptions): void {
  const read = { config: { scope: opts.readScope } };
  const write = { config: { scope: opts.writeScope } };
  const { registry } = opts;
  fastify.get('/', read, async (req, reply) => answer(req, reply, {}));
  fastify.get('/subjects', read, async (req, reply) => {
    const prefix = (req.query as { subjectPrefix?: string }).subjectPrefix;
    return answer(req, reply, await (await registry()).subjects({ deleted: flag(req.query, 'deleted'), prefix }));
  });
  fastify.get('/subjects/:subject/versions', read, async (req, reply) => {
    const { subject } = req.params as Params;
    return answer(req, reply, await (await registry()).versions(subject, flag(req.query, 'deleted')));
  });
  fastify.get('/subjects/:subject/versions/:version', read, async (req, reply) => {
    const { subject, version } = req.params as Params;
    const v = await (await registry()).version(subject, parseVersion(version), flag(req.query, 'deleted'));
    return answer(req, reply, versionJson(v));
  });
  fastify.get('/subjects/:subject/versions/:version/schema', read, async (req, reply) => {
    const { subject, version } = req.params as Params;
    const v = await (await registry()).version(subject, parseVersion(version), flag(req.query, 'deleted'));
    return reply.type(answerType(req)).send(v.schema);
  });
  fastify.post('/subjects/:subject/versions', write, async (req, reply) => {
    const r = await registry();
    const { subject } = req.params as Params;
    const { id } = await r.register(checkSubject(subject), schemaInput(req.body, r.schemaBytesMax));
    return answer(req, reply, { id });
  });
  fastify.post('/subjects/:subject', read, async (req, reply) => {
    const r = await registry();
    const { subject } = req.params as Params;
    const v = await r.lookup(subject, schemaInput(req.body, r.schemaBytesMax), flag(req.query, 'deleted'));
    return answer(req, reply, versionJson(v));
  });
  fastify.delete('/subjects/:subject', write, async (req, reply) => {
    const { subject } = req.params as Params;
    return answer(req, reply, await (await registry()).deleteSubject(subject, flag(req.query, 'permanent')));
  });
  fastify.delete('/subjects/:subject/versions/:version', write, async (req, reply) => {
    const { subject, version } = req.params as Params;
    const r = await registry();
    return answer(req, reply, await r.deleteVersion(subject, parseVersion(version), flag(req.query, 'permanent')));
  });
}

function idRoutes(fastify: FastifyInstance, opts: RegistryRoutesOptions): void {
  const read = { config: { scope: opts.readScope } };
  const { registry } = opts;
  const byId = async (req: FastifyRequest): Promise<SchemaEntry> =>
    (await registry()).schemaById(parseId((req.params as Params).id));
  fastify.get('/schemas/ids/:id', read, async (req, reply) => answer(req, reply, schemaJson(await byId(req))));
  fastify.get('/schemas/ids/:id/schema', read, async (req, reply) =>
    reply.type(answerType(req)).send((await byId(req)).schema),
  );
  fastify.get('/schemas/ids/:id/versions', read, async (req, reply) => {
    const uses = await (await registry()).usesOf(parseId((req.params as Params).id), flag(req.query, 'deleted'));
    return answer(req, reply, uses);
  });
  fastify.get('/schemas/ids/:id/subjects', read, async (req, reply) => {
    const uses = await (await registry()).usesOf(parseId((req.params as Params).id), flag(req.query, 'deleted'));
    return answer(req, reply, [...new Set(uses.map((u) => u.subject))]);
  });
  fastify.get('/schemas/types', read, async (req, reply) => answer(req, reply, (await registry()).types()));
}

/**
 * GET|PUT /config and GET|PUT|DELETE /config/:subject (the compatibility level), and the same for
 * /mode. GET answers `{"compatibilityLevel"}` / `{"mode"}`, PUT echoes `{"compatibility"}` / `{"mode"}`.
 */
function settingRoutes(fastify: FastifyInstance, opts: RegistryRoutesOptions, kind: 'config' | 'mode'): void {
  const read = { config: { scope: opts.readScope } };
  const write = { config: { scope: opts.writeScope } };
  const { registry } = opts;
  const getKey = kind === 'config' ? 'compatibilityLevel' : 'mode';
  const putKey = kind === 'config' ? 'compatibility' : 'mode';
  const get = async (r: Registry, subject: string | null, fallback: boolean): Promise<string> =>
    kind === 'config' ? r.config(subject, fallback) : r.mode(subject, fallback);
  const put = async (r: Registry, subject: string | null, body: unknown): Promise<string> =>
    kind === 'config' ? r.setConfig(subject, levelInput(body)) : r.setMode(subject, modeInput(body));
  const subjectOf = (req: FastifyRequest): string => (req.params as Params).subject;
  fastify.get(`/${kind}`, read, async (req, reply) =>
    answer(req, reply, { [getKey]: await get(await registry(), null, false) }),
  );
  fastify.put(`/${kind}`, write, async (req, reply) =>
    answer(req, reply, { [putKey]: await put(await registry(), null, req.body) }),
  );
  fastify.get(`/${kind}/:subject`, read, async (req, reply) => {
    const value = await get(await registry(), subjectOf(req), flag(req.query, 'defaultToGlobal'));
    return answer(req, reply, { [getKey]: value });
  });
  fastify.put(`/${kind}/:subject`, write, async (req, reply) =>
    answer(req, reply, { [putKey]: await put(await registry(), subjectOf(req), req.body) }),
  );
  fastify.delete(`/${kind}/:subject`, write, async (req, reply) => {
    const r = await registry();
    const before = kind === 'config' ? await r.deleteConfig(subjectOf(req)) : await r.deleteMode(subjectOf(req));
    return answer(req, reply, { [getKey]: before });
  });
}

function compatibilityRoutes(fastify: FastifyInstance, opts: RegistryRoutesOptions): void {
  const read = { config: { scope: opts.readScope } };
  const { registry } = opts;
  const check = async (
    req: FastifyRequest,
    reply: FastifyReply,
    against: number | 'latest' | 'level',
  ): Promise<FastifyReply> => {
    const r = await registry();
    const messages = await r.compatibility(
      (req.params as Params).subject,
      against,
      schemaInput(req.body, r.schemaBytesMax),
    );
    const verbose = flag(req.query, 'verbose');
    return answer(req, reply, { is_compatible: messages.length === 0, ...(verbose ? { messages } : {}) });
  };
  fastify.post('/compatibility/subjects/:subject/versions/:version', read, async (req, reply) =>
    check(req, reply, parseVersion((req.params as Params).version)),
  );
  fastify.post('/compatibility/subjects/:subject/versions', read, async (req, reply) => check(req, reply, 'level'));
}
