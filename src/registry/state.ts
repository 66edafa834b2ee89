/**
 * The registry's state, as a pure fold of the `_schemas` records (store.ts): subjects → versions →
 * schema ids, the schemas by id, the compatibility levels and modes. `apply` is deterministic, so
 * every process that reads the same log holds the same state.
 *
 * Invariants (asserted by `apply`, which voids a record that would break one):
 * - an id names one schema (type, canonical text, references) forever, and that schema keeps its
 *   first id: the same schema registered under any subject gets the same id; ids are never reused,
 *   even after a hard delete;
 * - a subject's version numbers only grow; a version is hidden when soft-deleted (its id still
 *   resolves) and gone when hard-deleted, which only a soft-deleted version can be;
 * - a record takes effect only at the offset its writer expected (`base === offset`, see store.ts).
 */
import type { CompatibilityLevel, SchemaReference, SchemaType } from '../formats/index.ts';
import type { Change, DeleteRecord, RegisterRecord, RegistryMode, StoredChange } from './store.ts';

export interface SchemaEntry {
  id: number;
  schemaType: SchemaType;
  schema: string;
  references: SchemaReference[];
  key: string;
}

export interface VersionEntry {
  version: number;
  id: number;
  deleted: boolean;
}

export const DEFAULT_COMPATIBILITY: CompatibilityLevel = 'BACKWARD';
export const DEFAULT_MODE: RegistryMode = 'READWRITE';

export class RegistryState {
  /** Every record before this offset has been applied. */
  end = 0;
  /** Per subject, its versions in ascending order (soft-deleted ones included). */
  readonly subjects = new Map<string, VersionEntry[]>();
  readonly schemas = new Map<number, SchemaEntry>();
  readonly idByKey = new Map<string, number>();
  /** The highest version a subject ever had, so numbers only grow (reset by a hard delete of the whole subject). */
  readonly lastVersion = new Map<string, number>();
  nextId = 1;
  compatibility: CompatibilityLevel = DEFAULT_COMPATIBILITY;
  mode: RegistryMode = DEFAULT_MODE;
  readonly subjectCompatibility = new Map<string, CompatibilityLevel>();
  readonly subjectMode = new Map<string, RegistryMode>();

  /** Applies one stored change; returns why it was void, or null when it took effect. */
  apply(stored: StoredChange): string | null {
    this.end = stored.offset + 1;
    if (stored.change === null) return stored.problem ?? 'unreadable';
    if (stored.base !== stored.offset)
      return `written on a state built to offset ${stored.base}, but landed at ${stored.offset} (another writer came first)`;
    return this.applyChange(stored.change);
  }

  private applyChange(change: Change): string | null {
    switch (change.op) {
      case 'register':
        return this.applyRegister(change);
      case 'delete':
        return this.applyDelete(change);
      case 'config':
        if (change.subject === null) this.compatibility = change.compatibility ?? DEFAULT_COMPATIBILITY;
        else if (change.compatibility === null) this.subjectCompatibility.delete(change.subject);
        else this.subjectCompatibility.set(change.subject, change.compatibility);
        return null;
      case 'mode':
        if (change.subject === null) this.mode = change.mode ?? DEFAULT_MODE;
        else if (change.mode === null) this.subjectMode.delete(change.subject);
        else this.subjectMode.set(change.subject, change.mode);
        return null;
    }
  }

  private applyRegister(r: RegisterRecord): string | null {
    const known = this.idByKey.get(r.key);
    if (known !== undefined && known !== r.id) return `schema already has id ${known}, not ${r.id}`;
    const holder = this.schemas.get(r.id);
    if (holder !== undefined && holder.key !== r.key) return `id ${r.id} already names another schema`;
    if (r.version <= (this.lastVersion.get(r.subject) ?? 0))
      return `version ${r.version} of ${r.subject} is not above its last version`;
    if (holder === undefined) {
      this.schemas.set(r.id, {
        id: r.id,
        schemaType: r.schemaType,
        schema: r.schema,
        references: r.references,
        key: r.key,
      });
      this.idByKey.set(r.key, r.id);
      this.nextId = Math.max(this.nextId, r.id + 1);
    }
    const versions = this.subjects.get(r.subject) ?? [];
    versions.push({ version: r.version, id: r.id, deleted: false });
    this.subjects.set(r.subject, versions);
    this.lastVersion.set(r.subject, r.version);
    return null;
  }

  private applyDelete(d: DeleteRecord): string | null {
    const versions = this.subjects.get(d.subject);
    if (versions === undefined) return `no subject ${d.subject}`;
    const targets = d.version === null ? versions : versions.filter((v) => v.version === d.version);
    if (targets.length === 0) return `no version ${d.version} of ${d.subject}`;
    if (!d.permanent) {
      for (const v of targets) v.deleted = true;
      return null;
    }
    if (targets.some((v) => !v.deleted)) return 'a hard delete of a version that was not soft-deleted first';
    const left = versions.filter((v) => !targets.includes(v));
    if (left.length > 0) this.subjects.set(d.subject, left);
    else {
      // Confluent numbers a subject from 1 again once it is deleted for good; its settings go with it.
      this.subjects.delete(d.subject);
      this.lastVersion.delete(d.subject);
      this.subjectCompatibility.delete(d.subject);
      this.subjectMode.delete(d.subject);
    }
    return null;
  }

  /** The subject's versions, without the soft-deleted ones unless `deleted`. */
  versions(subject: string, deleted = false): VersionEntry[] {
    const all = this.subjects.get(subject) ?? [];
    return deleted ? all : all.filter((v) => !v.deleted);
  }

  /** Whether some subject's version (soft-deleted or not) still uses the id. */
  idInUse(id: number): boolean {
    for (const versions of this.subjects.values()) if (versions.some((v) => v.id === id)) return true;
    return false;
  }

  /** The level that applies to a subject: its own, else the global one. */
  levelOf(subject: string): CompatibilityLevel {
    return this.subjectCompatibility.get(subject) ?? this.compatibility;
  }

  modeOf(subject: string): RegistryMode {
    return this.subjectMode.get(subject) ?? this.mode;
  }

  /** Versions (not soft-deleted) of any subject whose schema references `subject` (at `version`, or any). */
  referrers(subject: string, version: number | null): { subject: string; version: number }[] {
    const out: { subject: string; version: number }[] = [];
    for (const [s, versions] of this.subjects) {
      for (const v of versions) {
        if (v.deleted) continue;
        const refs = this.schemas.get(v.id)?.references ?? [];
        if (refs.some((r) => r.subject === subject && (version === null || r.version === version)))
          out.push({ subject: s, version: v.version });
      }
    }
    return out;
  }
}
