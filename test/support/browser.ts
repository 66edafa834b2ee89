/**
 * Headless Chromium for the browser suites: Debian's chromium (requireDebianPackage finds it),
 * driven by playwright-core, with the flags this machine needs. Playwright gives each launch a
 * fresh user data dir. Screenshots go to test-artifacts/ (gitignored, kept by CI as artifacts).
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

/** What the browser suites need (test/support/debian.ts): `requireDebianPackage(t, CHROMIUM)`. */
export const CHROMIUM = { package: 'chromium', path: '/usr/bin/chromium', suite: 'the dashboard browser test' };

export const SHOTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A headless Chromium at `executablePath`; the caller closes it (defer it to the test's end). */
export async function launchChromium(executablePath: string): Promise<Browser> {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
}
