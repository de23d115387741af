/**
 * `lifeboat group create NAME | list | show NAME | delete NAME` (admins): user groups. `admin`
 * and `users` are built in; a group with members cannot be deleted.
 */
import type { Command } from 'commander';
import { parseName } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { type Column, formatDetails, printJson, printLines, printList } from '../output.ts';
import { registerQuota } from './quota.ts';

/** A group as the API answers it. */
interface GroupView {
  name: string;
  builtin: boolean;
  createdAt?: string;
  members: string[];
}

const COLUMNS: readonly Column<GroupView>[] = [
  { header: 'NAME', value: (group) => group.name },
  { header: 'BUILTIN', value: (group) => (group.builtin ? 'yes' : 'no') },
  { header: 'USERS', value: (group) => group.members.length },
  { header: 'CREATED', value: (group) => group.createdAt },
];

/** Adds the `group` command group to `program`. */
export function registerGroup(program: Command): void {
  const group = requireSubcommand(program.command('group').description('user groups (admins)'));

  group
    .command('create')
    .description('create a group')
    .argument('<NAME>', 'letters, digits, . _ - (at most 64)', parseName)
    .action(async (name: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const item = await context.client().post<GroupView>('/groups', { name });
      if (context.output.json) return printJson(item);
      printLines([`group ${item.name} created`]);
    });

  group
    .command('list')
    .description('list the groups')
    .action(async (_options: unknown, command: Command) => {
      const context = contextOf(command);
      printList(context.output, await context.client().list<GroupView>('/groups'), COLUMNS, 'no groups');
    });

  group
    .command('show')
    .description('show a group and its users')
    .argument('<NAME>', 'group name', parseName)
    .action(async (name: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const item = await context.client().get<GroupView>(`/groups/${encodeURIComponent(name)}`);
      if (context.output.json) return printJson(item);
      printLines(
        formatDetails([
          ['NAME', item.name],
          ['BUILTIN', item.builtin ? 'yes' : 'no'],
          ['CREATED', item.createdAt],
          ['USERS', item.members.join(', ') || '-'],
        ]),
      );
    });

  group
    .command('delete')
    .description('delete an empty group')
    .argument('<NAME>', 'group name', parseName)
    .action(async (name: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      await context.client().delete(`/groups/${encodeURIComponent(name)}`);
      if (context.output.json) return printJson({ name, deleted: true });
      printLines([`group ${name} deleted`]);
    });

  registerQuota(group, 'group');
}
