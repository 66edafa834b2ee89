/**
 * Version ranges as Kafka's message specs write them: '3+', '3-5', '3', 'none'.
 */

export interface VersionRange {
  readonly min: number;
  /** Inclusive; Infinity for '3+'. */
  readonly max: number;
}

const NONE: VersionRange = { min: 1, max: 0 };

export function parseVersions(text: string): VersionRange {
  if (text === 'none') return NONE;
  let match = /^(\d+)\+$/.exec(text);
  if (match) return { min: Number(match[1]), max: Infinity };
  match = /^(\d+)-(\d+)$/.exec(text);
  if (match) return { min: Number(match[1]), max: Number(match[2]) };
  match = /^(\d+)$/.exec(text);
  if (match) return { min: Number(match[1]), max: Number(match[1]) };
  throw new Error(`invalid version range '${text}' in a Kafka protocol table`);
}

export function inVersions(version: number, text: string | undefined): boolean {
  if (text === undefined) return false;
  const range = parseVersions(text);
  return version >= range.min && version <= range.max;
}
