/**
 * The consumer-group APIs, delegated to the group coordinator (src/kafka/groups). Placeholder until
 * the coordinator's entry is committed.
 */
import type { Handler } from '../context.ts';

// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in once src/kafka/groups lands
export interface GroupsPort {}

export function groupHandlers(_groups: boolean): Handler[] {
  return [];
}
