/**
 * `lifeboat user create NAME [--group G] [--admin] | list | show NAME | delete NAME |
 * chgrp NAME GROUP`: the people who use the control plane (admins only, but anyone may show
 * themselves). `create` prints the new user's first token once, alone on stdout. Also
 * `lifeboat whoami`: who the CLI's token belongs to (any user).
 */
import type { Command } from 'commander';
import { parseName } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { type Column, formatDetails, formatTable, printJson, printLines, printList } from '../output.ts';
import { registerQuota } from './quota.ts';

/** A user as the API answers it. */
export interface UserView {
  name: string;
  group: string;
  admin: boolean;
  createdAt: string;
}

const COLUMNS: readonly Column<UserView>[] = [
  { header: 'NAME', value: (user) => user.name },
  { header: 'GROUP', value: (user) => user.group },
  { header: 'ADMIN', value: (user) => (user.admin ? 'yes' : 'no') },
  { header: 'CREATED', value: (user) => user.createdAt },
];

/** Adds `whoami` to `program`: the token's user (GET /me), as columns or `--json`. */
export function registerWhoami(program: Command): void {
  program
    .command('whoami')
    .description('who the API token belongs to: name, group, admin')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      const me = await context.client().get<UserView>('/me');
      if (context.output.json) return printJson(me);
      printLines(formatTable([me], COLUMNS));
    });
}

/** Adds the `user` command group to `program`. */
export function registerUser(program: Command): void {
  const user = requireSubcommand(program.command('user').description('users of the control plane (admins)'));

  user
    .command('create')
    .description("create a user; prints the user's first token once, on stdout")
    .argument('<NAME>', 'letters, digits, . _ - (at most 64)', parseName)
    .option('--group <G>', "the user's group (default users, or admin with --admin)", parseName)
    .option('--admin', 'an administrator')
    .action(async (name: string, options: { group?: string; admin?: boolean }, command: Command) => {
      const context = contextOf(command);
      const body = {
        name,
        ...(options.group ? { group: options.group } : {}),
        admin: options.admin === true,
      };
      const created = await context
        .client()
        .post<UserView & { token: string; tokenId: string }>('/users', body);
      if (context.output.json) return printJson(created);
      // The token alone on stdout (`TOKEN=$(lifeboat user create alice)`), the how-to on stderr.
      printLines([created.token]);
      process.stderr.write(
        `user ${created.name} (group ${created.group}${created.admin ? ', admin' : ''}) created; this is their ` +
          `first API token (id ${created.tokenId}), shown only now: hand it over safely (a file of mode 0600 read ` +
          'with --token-file, or LIFEBOAT_TOKEN)\n',
      );
    });

  user
    .command('list')
    .description('list the users')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      printList(context.output, await context.client().list<UserView>('/users'), COLUMNS, 'no users');
    });

  user
    .command('show')
    .description('show one user')
    .argument('<NAME>', 'user name', parseName)
    .action(async (name: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const item = await context.client().get<UserView>(`/users/${encodeURIComponent(name)}`);
      if (context.output.json) return printJson(item);
      printLines(
        formatDetails([
          ['NAME', item.name],
          ['GROUP', item.group],
          ['ADMIN', item.admin ? 'yes' : 'no'],
          ['CREATED', item.createdAt],
        ]),
      );
    });

  user
    .command('delete')
    .description('delete a user and their tokens (refused while they own VMs, datastores, images or jobs)')
    .argument('<NAME>', 'user name', parseName)
    .action(async (name: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      await context.client().delete(`/users/${encodeURIComponent(name)}`);
      if (context.output.json) return printJson({ name, deleted: true });
      printLines([`user ${name} deleted`]);
    });

  user
    .command('chgrp')
    .description("change a user's group")
    .argument('<NAME>', 'user name', parseName)
    .argument('<GROUP>', 'the new group', parseName)
    .action(async (name: string, group: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const item = await context.client().patch<UserView>(`/users/${encodeURIComponent(name)}`, { group });
      if (context.output.json) return printJson(item);
      printLines([`user ${item.name}: group ${item.group}`]);
    });

  registerQuota(user, 'user');
}
