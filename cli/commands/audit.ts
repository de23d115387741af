/**
 * `lifeboat audit list [--user NAME] [--object KIND/ID] [--since ISO-8601] [--limit N]`: the
 * audit trail of changes made through the API, newest first (admins only). Follows the API's
 * pages until the end (or --limit records).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { AuditQuery, type AuditView, ObjectRef } from '#core/audit.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { type Column, printList } from '../output.ts';

const COLUMNS: readonly Column<AuditView>[] = [
  { header: 'TIME', value: (e) => e.at },
  { header: 'USER', value: (e) => e.user },
  { header: 'ROUTE', value: (e) => e.route },
  { header: 'OBJECT', value: (e) => e.object },
  { header: 'STATUS', value: (e) => (e.error ? `${e.status} ${e.error}` : e.status) },
  { header: 'SOURCE', value: (e) => e.sourceIp },
];

/** A commander parser from one field of the API's own query schema, so both refuse alike. */
function field<K extends 'user' | 'since'>(key: K, what: string) {
  return (value: string): string => {
    const parsed = AuditQuery.shape[key].safeParse(value);
    if (!parsed.success || parsed.data === undefined) throw new InvalidArgumentError(`Expected ${what}.`);
    return parsed.data;
  };
}

function parseObject(value: string): string {
  const parsed = ObjectRef.safeParse(value);
  if (!parsed.success)
    throw new InvalidArgumentError(`Expected ${parsed.error.issues[0]?.message ?? 'KIND/ID'}.`);
  return parsed.data;
}

function parseLimit(value: string): number {
  const n = /^\d{1,9}$/.test(value) ? Number(value) : 0;
  if (n < 1) throw new InvalidArgumentError('Expected a positive number of records.');
  return n;
}

/** Largest page asked of the API. */
const PAGE = 500;

/** Adds the `audit` command group to `program`. */
export function registerAudit(program: Command): void {
  const audit = requireSubcommand(
    program.command('audit').description('the audit trail of changes (admins)'),
  );

  audit
    .command('list')
    .description('changes made through the API, newest first: who, when, route, object, outcome, source')
    .option('--user <NAME>', "only this user's (or host:N's) changes", field('user', 'a user name or host:N'))
    .option(
      '--object <KIND/ID>',
      'only changes of this object (vm/63, datastore/100, user/alice...)',
      parseObject,
    )
    .option(
      '--since <ISO-8601>',
      'only changes from then on (default for a plain list: 30 days)',
      field('since', 'an ISO-8601 date or time'),
    )
    .option('--limit <N>', 'at most N records', parseLimit)
    .action(
      async (
        options: { user?: string; object?: string; since?: string; limit?: number },
        command: Command,
      ) => {
        const context = contextOf(command);
        const entries: AuditView[] = [];
        let next: string | undefined;
        do {
          const want = Math.min(PAGE, (options.limit ?? Number.POSITIVE_INFINITY) - entries.length);
          const query = new URLSearchParams({
            ...(options.user ? { user: options.user } : {}),
            ...(options.object ? { object: options.object } : {}),
            ...(options.since ? { since: options.since } : {}),
            limit: String(want),
            ...(next ? { next } : {}),
          });
          const page = await context.client().get<{ items: AuditView[]; next?: string }>(`/audit?${query}`);
          entries.push(...page.items);
          next = page.next;
        } while (next && (options.limit === undefined || entries.length < options.limit));
        printList(context.output, entries, COLUMNS, 'no audit records');
      },
    );
}
