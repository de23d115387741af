/**
 * `lifeboat user quota NAME [DSID] [SIZE=MiB] [IMAGES=N]` and `lifeboat group quota ...`:
 * datastore quotas. No pairs: show usage against limits, for all datastores together and for
 * each one. Pairs: set them (admins; -1 = unlimited) on DSID, or on all datastores without it.
 */
import type { Command } from 'commander';
import { ValidationError } from '#core/errors.ts';
import { parseQuotaPairs } from '#core/quota.ts';
import { parseId, parseName, parsePair } from '../args.ts';
import { contextOf } from '../context.ts';
import { UsageError } from '../errors.ts';
import { type Column, formatTable, printJson, printLines } from '../output.ts';

/** One entry as the API answers it. */
interface QuotaEntryView {
  datastore: number | 'all';
  size: { used: number; limit: number };
  images: { used: number; limit: number };
}

/** What `GET` and `PUT /users/{name}/quota` (and groups') answer. */
export interface QuotaView {
  kind: 'user' | 'group';
  name: string;
  exempt: boolean;
  entries: QuotaEntryView[];
}

const limit = (n: number) => (n < 0 ? '-' : String(n));

const COLUMNS: readonly Column<QuotaEntryView>[] = [
  { header: 'DATASTORE', value: (e) => (e.datastore === 'all' ? 'all' : e.datastore) },
  { header: 'SIZE (MiB)', value: (e) => `${e.size.used} / ${limit(e.size.limit)}` },
  { header: 'IMAGES', value: (e) => `${e.images.used} / ${limit(e.images.limit)}` },
];

/**
 * `[DSID] [SIZE=MiB] [IMAGES=N]`: the datastore (first, digits only) and the pairs, keys in upper
 * case; what the API would refuse (core/quota.ts's parseQuotaPairs) is a usage error here.
 */
export function parseQuotaArgs(args: readonly string[]): {
  datastoreId?: number;
  pairs: Record<string, string>;
} {
  const usage = (why: string) =>
    new UsageError(`${why}: expected [DSID] [SIZE=MiB] [IMAGES=N] (-1 = unlimited).`);
  const rest = [...args];
  const datastoreId =
    rest[0] !== undefined && /^\d+$/.test(rest[0]) ? parseId(rest.shift() as string) : undefined;
  const pairs: Record<string, string> = {};
  for (const text of rest) {
    let pair: [string, string];
    try {
      pair = parsePair(text);
    } catch {
      throw usage(`not KEY=VALUE: ${JSON.stringify(text)}`);
    }
    pairs[pair[0].toUpperCase()] = pair[1];
  }
  try {
    parseQuotaPairs(pairs);
  } catch (err) {
    if (err instanceof ValidationError) throw usage(err.message);
    throw err;
  }
  return { ...(datastoreId !== undefined && { datastoreId }), pairs };
}

/** The lines `quota` prints: usage against limits, `-` for unlimited. */
export function formatQuota(view: QuotaView, datastoreId?: number): string[] {
  const entries =
    datastoreId === undefined ? view.entries : view.entries.filter((e) => e.datastore === datastoreId);
  return [
    `${view.kind} ${view.name}${view.exempt ? ' (admin: charged nothing)' : ''}`,
    ...formatTable(entries, COLUMNS),
  ];
}

/** Adds `quota NAME [DSID] [SIZE=MiB] [IMAGES=N]` to the `user` or `group` command. */
export function registerQuota(parent: Command, kind: 'user' | 'group'): void {
  parent
    .command('quota')
    .description(
      `show the ${kind}'s datastore quotas (usage / limit), or set SIZE (MiB) and IMAGES on DSID, or on all datastores without it (admins; -1 = unlimited)`,
    )
    .argument('<NAME>', `${kind} name`, parseName)
    .argument('[args...]', '[DSID] [SIZE=MiB] [IMAGES=N]')
    .action(async (name: string, args: string[], _options: unknown, command: Command) => {
      const parsed = parseQuotaArgs(args);
      const context = contextOf(command);
      const client = context.client();
      const path = `/${kind}s/${encodeURIComponent(name)}/quota`;
      const view =
        Object.keys(parsed.pairs).length === 0
          ? await client.get<QuotaView>(path)
          : await client.put<QuotaView>(path, parsed);
      if (context.output.json) return printJson(view);
      printLines(formatQuota(view, parsed.datastoreId));
    });
}
