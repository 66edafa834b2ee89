/**
 * Bearer tokens with scopes. The config keeps only each token's SHA-256 (`kappa token <name>
 * --scopes …` prints a new token once, with the line to paste into the config); a request's token is hashed
 * and compared in constant time against every configured hash, so neither the comparison nor the
 * number of tokens checked depends on how much of a token matched.
 *
 * Scopes: `produce:<topic>`, `consume:<topic>`, `query`, `admin`; `*` in a scope matches any
 * characters (`produce:*`, `consume:sales.*`). `admin` grants every scope.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { KappaError } from '../errors.ts';
import type { TokenConfig } from '../stream/index.ts';

export interface Principal {
  name: string;
  scopes: string[];
}

const SCOPE = /^(admin|query|(produce|consume):[A-Za-z0-9._*-]+)$/;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random token (URL-safe, 256 bits) and its hash. */
export function newToken(): { token: string; sha256: string } {
  const token = `kp_${randomBytes(32).toString('base64url')}`;
  return { token, sha256: hashToken(token) };
}

export function checkTokens(tokens: readonly TokenConfig[]): void {
  const names = new Set<string>();
  for (const t of tokens) {
    if (typeof t.name !== 'string' || t.name === '' || names.has(t.name))
      throw new KappaError(
        'KAPPA_CONFIG_INVALID',
        `Every server token needs a unique name; "${t.name}" is empty or used twice.`,
      );
    names.add(t.name);
    if (typeof t.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(t.sha256)) {
      throw new KappaError(
        'KAPPA_CONFIG_INVALID',
        `Token "${t.name}": sha256 must be the 64 hex characters of the token's SHA-256 (\`kappa token <name> --scopes …\` prints it), never the token itself.`,
      );
    }
    if (!Array.isArray(t.scopes) || t.scopes.length === 0)
      throw new KappaError(
        'KAPPA_CONFIG_INVALID',
        `Token "${t.name}" has no scopes; give it some of produce:<topic>, consume:<topic>, query, admin.`,
      );
    for (const s of t.scopes) {
      if (typeof s !== 'string' || !SCOPE.test(s))
        throw new KappaError(
          'KAPPA_CONFIG_INVALID',
          `Token "${t.name}" has scope "${s}"; scopes are produce:<topic>, consume:<topic>, query or admin (* matches any characters in a topic).`,
        );
    }
  }
}

/** Finds the token's principal, or null. Every configured hash is compared, in constant time. */
export function authenticate(tokens: readonly TokenConfig[], token: string): Principal | null {
  const given = Buffer.from(hashToken(token), 'hex');
  let found: TokenConfig | null = null;
  for (const t of tokens) {
    if (timingSafeEqual(given, Buffer.from(t.sha256, 'hex')) && found === null) found = t;
  }
  return found === null ? null : { name: found.name, scopes: found.scopes };
}

function globMatch(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\-]/g, '\\$&'))
      .join('.*')}$`,
  );
  return re.test(value);
}

export function hasScope(principal: Principal, needed: string): boolean {
  return principal.scopes.some((s) => s === 'admin' || globMatch(s, needed));
}
