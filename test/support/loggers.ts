/**
 * Loggers for the code under test: one that says nothing, and one that remembers what it was told
 * so a test can assert on a warning.
 */
import type { Logger } from '../../src/log/index.ts';

/** Says nothing (the engine and the log are chatty, and a test's output should be its verdict). */
export const quietLogger: Logger = { info() {}, warn() {} };

export interface RecordingLogger extends Logger {
  warnings: string[];
  infos: string[];
}

/** Keeps every message, warnings and infos apart. */
export function recordingLogger(): RecordingLogger {
  const warnings: string[] = [];
  const infos: string[] = [];
  return { warnings, infos, warn: (m) => void warnings.push(m), info: (m) => void infos.push(m) };
}
