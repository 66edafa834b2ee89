/**
 * Which retired version a rollback brings back: the one asked for by number (`kappa rollback <view>
 * --to N`, `POST /v1/views/:view/rollback?version=N`), or by default the previous one. A version
 * that is live, dropped or never built is refused with an error that lists the versions one can
 * roll back to, and nothing changes.
 */
import { KappaError } from '../errors.ts';
import type { ViewVersionInfo } from '../view/index.ts';

/** The retired version of a view that was live most recently: what a rollback without a version brings back. */
export function previousVersion(view: string, versions: ViewVersionInfo[]): ViewVersionInfo {
  const target = versions
    .filter((v) => v.state === 'retired' && v.liveAtMs !== null)
    .sort((a, b) => (b.liveAtMs ?? 0) - (a.liveAtMs ?? 0))[0];
  if (target === undefined) {
    throw new KappaError(
      'KAPPA_VIEW_CONFLICT',
      `View "${view}" has no earlier version to roll back to (retired versions are kept per the view's keepVersions, default 1).`,
      { view },
    );
  }
  return target;
}

/** The version a rollback asked for by number: it must be a kept, retired version of the view. */
export function chosenVersion(view: string, versions: ViewVersionInfo[], version: number): ViewVersionInfo {
  const retired = versions.filter((v) => v.state === 'retired').map((v) => v.version);
  const kept =
    retired.length === 0 ? 'it keeps no retired version' : `the versions you can roll back to: ${retired.join(', ')}`;
  if (!Number.isSafeInteger(version) || version < 1) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `"${String(version)}" is not a version number of view "${view}": versions are whole numbers from 1 (${kept}).`,
      { view, version },
    );
  }
  const target = versions.find((v) => v.version === version);
  if (target?.state === 'live') {
    throw new KappaError(
      'KAPPA_VIEW_CONFLICT',
      `Version ${version} of view "${view}" is already live; nothing to roll back (${kept}).`,
      {
        view,
        version,
      },
    );
  }
  if (target?.state !== 'retired') {
    throw new KappaError(
      'KAPPA_UNKNOWN_VIEW',
      `View "${view}" has no version ${version} to roll back to: it was never built or has been dropped (retired versions are kept per the view's keepVersions, default 1; ${kept}).`,
      { view, version },
    );
  }
  return target;
}
