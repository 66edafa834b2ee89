/** `kappa token <name> --scopes …`: a new bearer token for the HTTP API and the config line that admits it. */
import { checkTokens, newToken } from '../server/index.ts';
import type { CliContext } from './main.ts';

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
