/**
 * Kappa's schema registry: the Confluent Schema Registry's model (subjects → versions → global
 * schema ids, soft and hard deletes, compatibility levels and modes) over the `_schemas` topic of
 * Kappa's log (store.ts has the record format; state.ts the fold). http.ts serves it over HTTP.
 *
 * Every operation first catches up with the log, so a process sees what others wrote. A write
 * decides on the state it has read to offset N, appends its record saying so (`base: N`), then reads
 * up to its record: if another writer's record landed first, its own is void (store.ts) and it
 * decides again on the newer state, at most WRITE_ATTEMPTS_MAX times. So ids stay unique across
 * processes: an id is taken only by a record that was decided on the whole log before it, and the
 * first registration of a schema fixes its id for every later one.
 *
 * Bad input (a subject name, a version, a schema that does not parse, an incompatible schema) is
 * refused before anything is appended. Writes in one process are serialised; reads of the log into
 * the state are serialised too, so no record is applied twice.
 */
import { createHash } from 'node:crypto';
import { KappaError } from '../errors.ts';
import type { Log } from '../log/index.ts';
import type { CompatibilityLevel, FormatCodec, ParsedSchema, SchemaReference, SchemaType } from '../formats/index.ts';
import { compatibilityMessages, type PreviousVersion, versionsToCheck } from './compatibility.ts';
import { RegistryError } from './errors.ts';
import { type SchemaInput, checkSubject } from './input.ts';
import { RegistryState, type SchemaEntry, type VersionEntry } from './state.ts';
import { type Change, type RegistryMode, SchemaStore } from './store.ts';

/** Default largest schema text, in bytes. */
export const SCHEMA_BYTES_MAX_DEFAULT = 1024 * 1024;
/** How many times a write decides again after another process's write came first. */
const WRITE_ATTEMPTS_MAX = 10;

export interface RegistryOptions {
  log: Log;
  /** The codec of each schema type this registry accepts (src/formats/index.ts has them all). */
  codecs: Partial<Record<SchemaType, FormatCodec>>;
  /** Largest schema text accepted, in bytes (default 1 MiB). */
  schemaBytesMax?: number;
  /** Told about records of `_schemas` that do not take effect for a reason other than a lost race. */
  logger?: { warn(message: string): void };
}

/** A subject's version as the API returns it. */
export interface SubjectVersion {
  subject: string;
  version: number;
  id: number;
  schemaType: SchemaType;
  schema: string;
  references: SchemaReference[];
}

export class Registry {
  readonly schemaBytesMax: number;
  private readonly state = new RegistryState();
  private readonly parsed = new Map<number, ParsedSchema>();
  /** The tail of the chain of reads into the state (one at a time). */
  private reading: Promise<void> = Promise.resolve();
  /** The tail of the chain of writes (one at a time in this process). */
  private writing: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly store: SchemaStore,
    private readonly opts: RegistryOptions,
  ) {
    this.schemaBytesMax = opts.schemaBytesMax ?? SCHEMA_BYTES_MAX_DEFAULT;
  }

  /** Opens the registry on a log: creates `_schemas` if needed and reads it from its start. */
  static async open(opts: RegistryOptions): Promise<Registry> {
    const store = await SchemaStore.open(opts.log);
    const registry = new Registry(store, opts);
    registry.state.end = await store.start();
    await registry.refresh();
    return registry;
  }

  /** Catches up with the records other processes appended. */
  async refresh(): Promise<void> {
    await this.readTo(await this.store.end());
  }

  private readTo(target: number): Promise<void> {
    const next = this.reading.then(async () => {
      if (this.state.end >= target) return;
      for await (const stored of this.store.read(this.state.end, target)) {
        const why = this.state.apply(stored);
        if (why !== null && stored.change !== null && stored.base !== stored.offset) continue;
        if (why !== null)
          this.opts.logger?.warn(`schema registry: record ${stored.offset} of _schemas ignored: ${why}`);
      }
    });
    this.reading = next.catch(() => {});
    return next;
  }

  /**
   * Runs a write: `decide` looks at the caught-up state and returns the change to append (or null
   * when none is needed) and the answer; the answer is returned once the change took effect.
   */
  private write<T>(decide: (state: RegistryState) => { change: Change | null; answer: T }): Promise<T> {
    const run = async (): Promise<T> => {
      for (let attempt = 1; attempt <= WRITE_ATTEMPTS_MAX; attempt++) {
        await this.refresh();
        const { change, answer } = decide(this.state);
        if (change === null) return answer;
        if (this.opts.log.readOnly)
          throw new KappaError(
            'KAPPA_READ_ONLY',
            'This Kappa opened its log read-only, so the registry cannot change.',
          );
        const base = this.state.end;
        const offset = await this.store.append(change, base);
        await this.readTo(offset + 1);
        if (offset === base) return answer;
      }
      throw new RegistryError(
        'STORE_ERROR',
        `Other processes kept writing to the registry: ${WRITE_ATTEMPTS_MAX} attempts lost the race. Retry the request.`,
      );
    };
    const result = this.writing.then(run);
    this.writing = result.catch(() => {});
    return result;
  }

  // ---- reads ----

  async subjects(opts: { deleted?: boolean; prefix?: string } = {}): Promise<string[]> {
    await this.refresh();
    const out: string[] = [];
    for (const [subject, versions] of this.state.subjects)
      if ((opts.deleted || versions.some((v) => !v.deleted)) && subject.startsWith(opts.prefix ?? ''))
        out.push(subject);
    return out.sort();
  }

  async versions(subject: string, deleted = false): Promise<number[]> {
    await this.refresh();
    return this.subjectVersions(subject, deleted).map((v) => v.version);
  }

  async version(subject: string, version: number | 'latest', deleted = false): Promise<SubjectVersion> {
    await this.refresh();
    return this.subjectVersion(subject, this.findVersion(subject, version, deleted));
  }

  async schemaById(id: number): Promise<SchemaEntry> {
    await this.refresh();
    const entry = this.state.schemas.get(id);
    if (entry === undefined || !this.state.idInUse(id))
      throw new RegistryError('SCHEMA_NOT_FOUND', `Schema ${id} not found.`);
    return entry;
  }

  /**
   * The schema registered under an id, parsed, as of the last refresh (undefined: not known yet).
   * Synchronous, for decoding records: a schema whose versions were deleted still reads the records
   * written with it, as replay must.
   */
  schemaFor(id: number): ParsedSchema | undefined {
    return this.state.schemas.has(id) ? this.parsedOf(id) : undefined;
  }

  /** The subjects and versions that use a schema id. */
  async usesOf(id: number, deleted = false): Promise<{ subject: string; version: number }[]> {
    await this.schemaById(id);
    const out: { subject: string; version: number }[] = [];
    for (const [subject, versions] of this.state.subjects)
      for (const v of versions) if (v.id === id && (deleted || !v.deleted)) out.push({ subject, version: v.version });
    return out;
  }

  types(): SchemaType[] {
    return (['JSON', 'PROTOBUF', 'AVRO'] as const).filter((t) => this.opts.codecs[t] !== undefined);
  }

  /** The version of `subject` that holds this schema (POST /subjects/:s). */
  async lookup(subject: string, input: SchemaInput, deleted = false): Promise<SubjectVersion> {
    await this.refresh();
    this.subjectVersions(subject, deleted);
    const key = keyOf(this.parse(input), input.references);
    const found = this.state
      .versions(subject, deleted)
      .filter((v) => this.state.schemas.get(v.id)?.key === key)
      .at(-1);
    if (found === undefined)
      throw new RegistryError('SCHEMA_NOT_FOUND', `Schema not found under subject "${subject}".`);
    return this.subjectVersion(subject, found);
  }

  /** The level that applies to a subject (`subject` null: the global one). */
  async config(subject: string | null, defaultToGlobal = false): Promise<CompatibilityLevel> {
    await this.refresh();
    if (subject === null) return this.state.compatibility;
    const own = this.state.subjectCompatibility.get(subject);
    if (own !== undefined) return own;
    if (defaultToGlobal) return this.state.compatibility;
    throw new RegistryError(
      'SUBJECT_COMPATIBILITY_NOT_CONFIGURED',
      `Subject '${subject}' does not have subject-level compatibility configured.`,
    );
  }

  async mode(subject: string | null, defaultToGlobal = false): Promise<RegistryMode> {
    await this.refresh();
    if (subject === null) return this.state.mode;
    const own = this.state.subjectMode.get(subject);
    if (own !== undefined) return own;
    if (defaultToGlobal) return this.state.mode;
    throw new RegistryError(
      'SUBJECT_MODE_NOT_CONFIGURED',
      `Subject '${subject}' does not have subject-level mode configured.`,
    );
  }

  /**
   * Could `input` join the subject? `against`: one version (a number or 'latest'), or 'level' for the
   * versions the subject's level names (none yet: nothing to break). Empty messages when it could.
   */
  async compatibility(subject: string, against: number | 'latest' | 'level', input: SchemaInput): Promise<string[]> {
    await this.refresh();
    const candidate = this.parse(input);
    const level = this.state.levelOf(subject);
    const versions =
      against === 'level'
        ? versionsToCheck(level, this.state.versions(subject))
        : [this.findVersion(subject, against, false)];
    return compatibilityMessages(this.codec(input.schemaType), level, candidate, this.previous(versions));
  }

  // ---- writes ----

  /** Registers a schema under a subject; the same schema again gets the same id and no new version. */
  register(subject: string, input: SchemaInput): Promise<{ id: number; version: number }> {
    checkSubject(subject);
    this.checkSize(input);
    return this.write((state) => {
      this.writable(subject);
      const candidate = this.parse(input);
      const key = keyOf(candidate, input.references);
      const live = state.versions(subject);
      const same = live.find((v) => state.schemas.get(v.id)?.key === key);
      if (same !== undefined) return { change: null, answer: { id: same.id, version: same.version } };
      if (state.modeOf(subject) !== 'IMPORT') this.mustBeCompatible(subject, input.schemaType, candidate, live);
      const id = state.idByKey.get(key) ?? state.nextId;
      const version = (state.lastVersion.get(subject) ?? 0) + 1;
      const change: Change = {
        op: 'register',
        subject,
        version,
        id,
        schemaType: input.schemaType,
        schema: input.schema,
        references: input.references,
        key,
      };
      return { change, answer: { id, version } };
    });
  }

  /** Soft-deletes every version of a subject, or (permanent) removes a soft-deleted subject; the versions it touched. */
  deleteSubject(subject: string, permanent: boolean): Promise<number[]> {
    return this.write((state) => {
      this.writable(subject);
      const all = this.subjectVersions(subject, true);
      const live = all.filter((v) => !v.deleted);
      if (!permanent && live.length === 0)
        throw new RegistryError(
          'SUBJECT_SOFT_DELETED',
          `Subject '${subject}' was soft deleted. Set permanent=true to delete permanently.`,
        );
      if (permanent && live.length > 0)
        throw new RegistryError(
          'SUBJECT_NOT_SOFT_DELETED',
          `Subject '${subject}' was not deleted first before being permanently deleted. Delete it without permanent=true first.`,
        );
      this.noReferrers(state, subject, null);
      const touched = (permanent ? all : live).map((v) => v.version);
      return { change: { op: 'delete', subject, version: null, permanent }, answer: touched };
    });
  }

  /** Soft-deletes one version, or (permanent) removes a soft-deleted one. */
  deleteVersion(subject: string, version: number | 'latest', permanent: boolean): Promise<number> {
    return this.write((state) => {
      this.writable(subject);
      // A soft-deleted version is found too (to say so), except as "latest", which is the latest live one.
      const v = this.findVersion(subject, version, permanent || version !== 'latest');
      if (!permanent && v.deleted)
        throw new RegistryError(
          'VERSION_SOFT_DELETED',
          `Version ${v.version} of subject '${subject}' was soft deleted. Set permanent=true to delete permanently.`,
        );
      if (permanent && !v.deleted)
        throw new RegistryError(
          'VERSION_NOT_SOFT_DELETED',
          `Version ${v.version} of subject '${subject}' was not deleted first before being permanently deleted. Delete it without permanent=true first.`,
        );
      this.noReferrers(state, subject, v.version);
      return { change: { op: 'delete', subject, version: v.version, permanent }, answer: v.version };
    });
  }

  /** Sets the global level (`subject` null) or a subject's. */
  setConfig(subject: string | null, level: CompatibilityLevel): Promise<CompatibilityLevel> {
    if (subject !== null) checkSubject(subject);
    return this.write(() => ({ change: { op: 'config', subject, compatibility: level }, answer: level }));
  }

  /** Removes a subject's own level; returns the level it had. */
  deleteConfig(subject: string): Promise<CompatibilityLevel> {
    return this.write((state) => {
      const own = state.subjectCompatibility.get(subject);
      if (own === undefined) {
        this.subjectVersions(subject, true);
        return { change: null, answer: state.compatibility };
      }
      return { change: { op: 'config', subject, compatibility: null }, answer: own };
    });
  }

  setMode(subject: string | null, mode: RegistryMode): Promise<RegistryMode> {
    if (subject !== null) checkSubject(subject);
    return this.write(() => ({ change: { op: 'mode', subject, mode }, answer: mode }));
  }

  deleteMode(subject: string): Promise<RegistryMode> {
    return this.write((state) => {
      const own = state.subjectMode.get(subject);
      if (own === undefined) return { change: null, answer: state.mode };
      return { change: { op: 'mode', subject, mode: null }, answer: own };
    });
  }

  // ---- helpers ----

  private checkSize(input: SchemaInput): void {
    const bytes = Buffer.byteLength(input.schema, 'utf8');
    if (bytes > this.schemaBytesMax)
      throw new RegistryError(
        'UNPROCESSABLE',
        `The schema is ${bytes} bytes, more than the ${this.schemaBytesMax} bytes this registry accepts (schemaBytesMax). Nothing was registered.`,
      );
  }

  private codec(type: SchemaType): FormatCodec {
    const codec = this.opts.codecs[type];
    if (codec === undefined)
      throw new RegistryError(
        'INVALID_SCHEMA',
        `This registry has no ${type} support; it accepts ${this.types().join(', ') || 'no schema type'}.`,
      );
    return codec;
  }

  /** Parses a submitted schema, its references resolved to registered versions. */
  private parse(input: SchemaInput): ParsedSchema {
    const texts = new Map<string, string>();
    for (const ref of input.references) {
      const v = this.state.versions(ref.subject, true).find((e) => e.version === ref.version);
      const entry = v === undefined ? undefined : this.state.schemas.get(v.id);
      if (entry === undefined)
        throw new RegistryError(
          'INVALID_SCHEMA',
          `Invalid schema: the reference "${ref.name}" names version ${ref.version} of subject "${ref.subject}", which is not registered. Register it first.`,
        );
      texts.set(`${ref.subject}\u0000${ref.version}`, entry.schema);
    }
    const resolve = (ref: SchemaReference): string => {
      const text = texts.get(`${ref.subject}\u0000${ref.version}`);
      if (text === undefined)
        throw new KappaError(
          'KAPPA_INVALID_SCHEMA',
          `Reference ${ref.subject} version ${ref.version} is not registered.`,
        );
      return text;
    };
    try {
      return this.codec(input.schemaType).parse(input.schema, input.references, resolve);
    } catch (err) {
      if (err instanceof KappaError && err.code === 'KAPPA_INVALID_SCHEMA')
        throw new RegistryError('INVALID_SCHEMA', `Invalid schema: ${err.message}`, err);
      throw err;
    }
  }

  /** A registered schema, parsed once. */
  private parsedOf(id: number): ParsedSchema {
    let p = this.parsed.get(id);
    if (p === undefined) {
      const entry = this.state.schemas.get(id)!;
      p = this.parse({ schemaType: entry.schemaType, schema: entry.schema, references: entry.references });
      this.parsed.set(id, p);
    }
    return p;
  }

  private previous(versions: readonly VersionEntry[]): PreviousVersion[] {
    return versions.map((v) => ({ version: v.version, schema: this.parsedOf(v.id) }));
  }

  private mustBeCompatible(subject: string, type: SchemaType, candidate: ParsedSchema, live: VersionEntry[]): void {
    const level = this.state.levelOf(subject);
    const messages = compatibilityMessages(
      this.codec(type),
      level,
      candidate,
      this.previous(versionsToCheck(level, live)),
    );
    if (messages.length > 0)
      throw new RegistryError(
        'INCOMPATIBLE_SCHEMA',
        `Schema being registered is incompatible with an earlier schema for subject "${subject}" (compatibility ${level}); nothing was registered. ${messages.join('; ')}`,
      );
  }

  private writable(subject: string): void {
    const mode = this.state.modeOf(subject);
    if (mode === 'READONLY' || mode === 'READONLY_OVERRIDE')
      throw new RegistryError(
        'OPERATION_NOT_PERMITTED',
        `Subject '${subject}' is in read-only mode (${mode}); change the mode with PUT /mode/${subject} to register or delete.`,
      );
  }

  private noReferrers(state: RegistryState, subject: string, version: number | null): void {
    const by = state.referrers(subject, version);
    if (by.length > 0)
      throw new RegistryError(
        'REFERENCE_EXISTS',
        `One or more references exist to the schema {subject=${subject}${version === null ? '' : `, version=${version}`}}: ${by
          .slice(0, 10)
          .map((r) => `${r.subject} version ${r.version}`)
          .join(', ')}. Delete those first.`,
      );
  }

  /** The subject's versions (40401 when it has none to show). */
  private subjectVersions(subject: string, deleted: boolean): VersionEntry[] {
    const all = this.state.subjects.get(subject);
    if (all === undefined) throw new RegistryError('SUBJECT_NOT_FOUND', `Subject '${subject}' not found.`);
    const shown = deleted ? all : all.filter((v) => !v.deleted);
    if (shown.length === 0) throw new RegistryError('SUBJECT_NOT_FOUND', `Subject '${subject}' not found.`);
    return shown;
  }

  private findVersion(subject: string, version: number | 'latest', deleted: boolean): VersionEntry {
    const shown = this.subjectVersions(subject, deleted);
    const v = version === 'latest' ? shown.at(-1) : shown.find((e) => e.version === version);
    if (v === undefined) throw new RegistryError('VERSION_NOT_FOUND', `Version ${version} not found.`);
    return v;
  }

  private subjectVersion(subject: string, v: VersionEntry): SubjectVersion {
    const s = this.state.schemas.get(v.id)!;
    return {
      subject,
      version: v.version,
      id: v.id,
      schemaType: s.schemaType,
      schema: s.schema,
      references: s.references,
    };
  }
}

/** The identity of a schema: its type, canonical text and references (what gets one id). */
function keyOf(p: ParsedSchema, references: readonly SchemaReference[]): string {
  const refs = references.map((r) => [r.name, r.subject, r.version]);
  return createHash('sha256')
    .update(JSON.stringify([p.type, p.canonical, refs]))
    .digest('hex');
}
