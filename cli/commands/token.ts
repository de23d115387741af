/**
 * `lifeboat token create [--name N] [--expires 30d] [--user NAME] | list [--user NAME] |
 * revoke TOKENID`: API tokens. A token is printed once, when made; lists never show one. A user
 * manages their own; admins anyone's with --user.
 */
import type { Command } from 'commander';
import { parseExpires, parseName, parseTokenId } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { type Column, printJson, printLines, printList } from '../output.ts';

/** A token as listed (never the token itself). */
interface TokenView {
  id: string;
  user: string;
  name: string;
  createdAt: string;
  expiresAt?: string;
  lastUsed?: string;
  revokedAt?: string;
  state: 'active' | 'expired' | 'revoked';
}

const COLUMNS: readonly Column<TokenView>[] = [
  { header: 'ID', value: (token) => token.id },
  { header: 'NAME', value: (token) => token.name || undefined },
  { header: 'USER', value: (token) => token.user },
  { header: 'STATE', value: (token) => token.state },
  { header: 'CREATED', value: (token) => token.createdAt },
  { header: 'EXPIRES', value: (token) => token.expiresAt ?? 'never' },
  { header: 'LAST USED', value: (token) => token.lastUsed },
];

/** Adds the `token` command group to `program`. */
export function registerToken(program: Command): void {
  const token = requireSubcommand(program.command('token').description('API tokens'));

  token
    .command('create')
    .description('a new API token, printed once on stdout')
    .option('--name <N>', 'what it is for (shown by token list)')
    .option('--expires <DURATION>', 'lifetime: 90s, 15m, 12h, 30d, 4w or never (default never)', parseExpires)
    .option('--user <NAME>', "another user's token (admins)", parseName)
    .action(async (options: { name?: string; expires?: string; user?: string }, command: Command) => {
      const context = contextOf(command);
      const body = {
        ...(options.name !== undefined ? { name: options.name } : {}),
        ...(options.expires !== undefined ? { expires: options.expires } : {}),
        ...(options.user !== undefined ? { user: options.user } : {}),
      };
      const made = await context.client().post<TokenView & { token: string }>('/tokens', body);
      if (context.output.json) return printJson(made);
      printLines([made.token]);
      process.stderr.write(
        `token ${made.id} for ${made.user}, ${made.expiresAt ? `valid until ${made.expiresAt}` : 'without expiry'}; ` +
          `shown only now (revoke it with: lifeboat token revoke ${made.id})\n`,
      );
    });

  token
    .command('list')
    .description('your tokens (admins: --user NAME): never the tokens themselves')
    .option('--user <NAME>', "another user's tokens (admins)", parseName)
    .action(async (options: { user?: string }, command: Command) => {
      const context = contextOf(command);
      const query = options.user ? `?user=${encodeURIComponent(options.user)}` : '';
      printList(
        context.output,
        await context.client().list<TokenView>(`/tokens${query}`),
        COLUMNS,
        'no tokens',
      );
    });

  token
    .command('revoke')
    .description('revoke a token: it is refused from the next request on')
    .argument('<TOKENID>', 'the id token list shows', parseTokenId)
    .action(async (id: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const revoked = await context.client().delete<TokenView>(`/tokens/${id}`);
      if (context.output.json) return printJson(revoked);
      printLines([`token ${revoked.id} (${revoked.user}) revoked`]);
    });
}
