/**
 * Crash points for the crash tests: when the environment variable KAPPA_TEST_CRASH_AT names a
 * point, the process kills itself there with SIGKILL, as a power cut or `kill -9` would, at a
 * moment a test could not hit from outside (for example inside the swap of a view version). Never
 * set outside tests.
 */
const target = process.env.KAPPA_TEST_CRASH_AT;

export function crashPoint(name: string): void {
  if (target === name) process.kill(process.pid, 'SIGKILL');
}
