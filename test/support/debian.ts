/**
 * Suites that need a Debian package rather than an npm one (today the dashboard's browser test,
 * which drives Debian's chromium; later kcat, python3-kafka and the like).
 *
 * The fresh-machine rule: `npm test` passes on a machine with Node and the npm packages only.
 * So every such suite asks here first:
 *
 *   requireDebianPackage(t, { package, path, suite }): string | null
 *       Returns the path to use, or null after marking test `t` skipped with one line that says
 *       how to run it; on null the test returns at once.
 *
 *   - Under `npm test` (scripts/test.js sets KAPPA_TEST_SKIP_DEBIAN=1) the suite is always
 *     skipped, installed or not, so `npm test` runs the same set of tests on every machine.
 *   - Under `npm run test:all`, or when a test file is run directly, the suite runs when `path`
 *     exists. When it is missing the suite is skipped, or FAILS if CI=true or KAPPA_REQUIRE_ALL=1
 *     (in CI a missing package is a broken machine, not a reason to test less).
 *   - KAPPA_<PACKAGE>_PATH (KAPPA_CHROMIUM_PATH, KAPPA_PYTHON3_KAFKA_PATH) overrides `path`;
 *     pointing it at a file that does not exist simulates a machine without the package.
 */
import { existsSync } from 'node:fs';

export interface DebianPackage {
  /** The Debian package name, as given to apt-get: 'chromium'. */
  package: string;
  /** A file the package installs, whose presence means it is installed: '/usr/bin/chromium'. */
  path: string;
  /** What needs it, for the messages: 'the dashboard browser test'. */
  suite: string;
}

interface Skippable {
  skip(message?: string): void;
}

export function requireDebianPackage(t: Skippable, need: DebianPackage): string | null {
  const install = `sudo apt-get install ${need.package}`;
  if (isSet(process.env.KAPPA_TEST_SKIP_DEBIAN)) {
    t.skip(
      `skipped: \`npm test\` leaves out ${need.suite}, which needs Debian's ${need.package}; to run it: \`${install}\`, then \`npm run test:all\``,
    );
    return null;
  }
  const overrideVar = `KAPPA_${need.package.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_PATH`;
  const path = process.env[overrideVar] || need.path;
  if (existsSync(path)) return path;
  const missing = `${need.suite} needs Debian's ${need.package}, and ${path} does not exist`;
  const strictBecause = isSet(process.env.KAPPA_REQUIRE_ALL)
    ? 'KAPPA_REQUIRE_ALL=1'
    : isSet(process.env.CI)
      ? `CI=${process.env.CI}`
      : null;
  if (strictBecause !== null) {
    throw new Error(
      `${missing}. Install it (${install}) or set ${overrideVar} to where it is. This is a failure, not a skip, because ${strictBecause} is set.`,
    );
  }
  t.skip(`skipped: ${missing}; install it (${install}) or set ${overrideVar}`);
  return null;
}

/** Set to anything but empty, '0' or 'false'. */
function isSet(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}
