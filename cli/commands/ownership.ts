/**
 * `lifeboat vm|datastore|image|backupjob chown ID USER[:GROUP]` and `chmod ID OCTAL`, as
 * `onevm chown` / `onevm chmod`: `PUT /<objects>/{id}/owner` and `PUT /<objects>/{id}/permissions`.
 */
import type { Command } from 'commander';
import { PERMISSIONS_PATTERN, permissionsToOctal } from '#core/permissions.ts';
import { type OwnerSpec, parseId, parseOctal, parseOwnerSpec } from '../args.ts';
import { contextOf } from '../context.ts';
import { type Column, printJson, printLines } from '../output.ts';

/** What both routes answer. */
export interface OwnershipView {
  id: number;
  owner: string;
  group: string;
  /** `um-u-----`. */
  permissions: string;
  /** The same as `onevm chmod` digits (`640`). */
  octal: string;
}

/** `VM 3: owner alice:web, permissions um-u----- (640)`. */
function describe(label: string, view: OwnershipView): string {
  return `${label} ${view.id}: owner ${view.owner}:${view.group}, permissions ${view.permissions} (${view.octal})`;
}

/**
 * Adds `chown` and `chmod` to an object's command group: `path` is its API collection (`/vms`),
 * `label` how messages name it (`VM`), `idName` its argument (`VMID`).
 */
export function registerOwnership(group: Command, path: string, label: string, idName: string): void {
  group
    .command('chown')
    .description(`give a ${label} to another user and/or group (USER, USER:GROUP or :GROUP)`)
    .argument(`<${idName}>`, `${label} id`, parseId)
    .argument(
      '<USER[:GROUP]>',
      'the new owner, owner and group, or :GROUP for the group only',
      parseOwnerSpec,
    )
    .action(async (id: number, spec: OwnerSpec, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const view = await context.client().put<OwnershipView>(`${path}/${id}/owner`, spec);
      if (context.output.json) return printJson(view);
      printLines([describe(label, view)]);
    });

  group
    .command('chmod')
    .description(
      `change a ${label}'s permissions: octal owner/group/others digits, 4 use + 2 manage + 1 admin`,
    )
    .argument(`<${idName}>`, `${label} id`, parseId)
    .argument('<OCTAL>', 'e.g. 640: owner use and manage, group use, others nothing', parseOctal)
    .action(async (id: number, permissions: string, _options: unknown, command: Command) => {
      const context = contextOf(command);
      const view = await context.client().put<OwnershipView>(`${path}/${id}/permissions`, { permissions });
      if (context.output.json) return printJson(view);
      printLines([describe(label, view)]);
    });
}

/** An object's ownership, as listings may show it (absent on records of older APIs). */
interface Ownable {
  owner?: string;
  group?: string;
  permissions?: string;
}

/** The OWNER, GROUP and PERMS (octal, as `onevm chmod` takes it) columns of a listing. */
export function ownershipColumns<T extends Ownable>(): Column<T>[] {
  return [
    { header: 'OWNER', value: (row) => row.owner },
    { header: 'GROUP', value: (row) => row.group },
    { header: 'PERMS', value: (row) => octalOf(row.permissions) },
  ];
}

/** `um-u----- (640)` for a show command; undefined when the record has none. */
export function describePermissions(permissions: string | undefined): string | undefined {
  return permissions && `${permissions} (${octalOf(permissions)})`;
}

function octalOf(permissions: string | undefined): string | undefined {
  return permissions && PERMISSIONS_PATTERN.test(permissions) ? permissionsToOctal(permissions) : permissions;
}
