/**
 * `kappa token <name> --scopes …`: a new bearer token for the HTTP API and the config line that
 * admits it. `kappa token create <name>` is taken too, as Kafka-style tools spell it.
 */
import { KappaError } from '../errors.ts';
import { checkTokens, newToken } from '../server/index.ts';
import type { CliContext } from './main.ts';

/** The token's name from the command's arguments: `<name>`, or `create <name>`. */
export function tokenName(args: readonly string[]): string {
  if (args.length === 1) return args[0];
  if (args.length === 2 && args[0] === 'create') return args[1];
  throw new KappaError(
    'KAPPA_INVALID_ARGUMENT',
    `kappa token takes one name, not "${args.join(' ').slice(0, 200)}": kappa token <name> --scopes <list> (or kappa token create <name> --scopes <list>).`,
  );
}

export function tokenCommand(ctx: CliContext, name: string, scopes: string): void {
  const list = scopes
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const { token, sha256 } = newToken();
  const entry = { name, sha256, scopes: list };
  checkTokens([entry]);
  ctx.stdout.write(`${token}\n`);
  ctx.stderr.write(
    `kappa: this is the token; it is not stored anywhere, so keep it now. Clients send it as \`Authorization: Bearer <token>\`.\n` +
      `kappa: add this to server.tokens in kappa.config.ts (it holds only the token's SHA-256):\n` +
      `  ${JSON.stringify(entry)}\n`,
  );
}
