/**
 * The audit trail's data: one record per change request through the API (any method but GET),
 * written after its route answered, refusals included. A record names who, when, the route
 * pattern, the object the route names, the status and the source address; never a body, a
 * query string or a token. Pure: the repository (functions/repo/audit.ts) stores it.
 */
import { z } from 'zod';
import { ValidationError } from './errors.ts';

/** How long an audit record is kept unless the deployment says otherwise (AUDIT_RETENTION_DAYS). */
export const DEFAULT_AUDIT_RETENTION_DAYS = 400;

/** Object kinds as the CLI names them (`vm/63`, `backupjob/4`, `user/alice`). */
export const AUDIT_KINDS = [
  'host',
  'vm',
  'datastore',
  'image',
  'backupjob',
  'user',
  'group',
  'token',
] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

/** The kind of object a route's first path segment names (`/runner/hosts/{id}` is a host). */
const KIND_OF_SEGMENT: Readonly<Record<string, AuditKind>> = {
  hosts: 'host',
  vms: 'vm',
  datastores: 'datastore',
  images: 'image',
  jobs: 'backupjob',
  users: 'user',
  groups: 'group',
  tokens: 'token',
};

/** The path parameter that identifies the object of a route whose first segment is a kind. */
const ID_PARAMS = ['id', 'name', 'tokenId'] as const;

/** An object reference `kind/id`: what `--object` and the record's `object` hold. */
export const ObjectRef = z
  .string()
  .regex(
    new RegExp(`^(${AUDIT_KINDS.join('|')}|job)/[A-Za-z0-9._:-]{1,128}$`),
    `must be KIND/ID with KIND one of ${AUDIT_KINDS.join(', ')} (e.g. vm/63)`,
  )
  // `job/4` is the API's name of a backup job: the same object.
  .transform((ref) => ref.replace(/^job\//, 'backupjob/'));

/**
 * The object a change names: from the route's path (`DELETE /vms/{id}` -> `vm/63`, sub-routes
 * such as `/vms/{id}/schedules/{schedId}` count for the VM), else, for a create that answered
 * 2xx, from the new object's `id` or `name` (`POST /datastores` -> `datastore/101`). Undefined
 * when the route names none (`POST /downloads`).
 */
export function auditObject(
  routeKey: string,
  params: Readonly<Record<string, string>>,
  reply?: { statusCode: number; body?: unknown },
): string | undefined {
  const segments = (routeKey.split(' ')[1] ?? '').split('/').filter(Boolean);
  const first = segments[0] === 'runner' ? segments[1] : segments[0];
  const kind = first === undefined ? undefined : KIND_OF_SEGMENT[first];
  if (!kind) return undefined;
  const idParam = ID_PARAMS.find((name) => params[name] !== undefined);
  const fromPath = idParam ? params[idParam] : undefined;
  if (fromPath !== undefined) return checked(`${kind}/${fromPath}`);
  // A create (`POST /datastores`): the object it made, only when it was made.
  if (!reply || reply.statusCode < 200 || reply.statusCode > 299) return undefined;
  const body = reply.body as { id?: unknown; name?: unknown } | undefined;
  const made = typeof body?.id === 'number' || typeof body?.id === 'string' ? body.id : body?.name;
  return typeof made === 'number' || typeof made === 'string' ? checked(`${kind}/${made}`) : undefined;
}

/** A well-formed object reference, or undefined (a bad path parameter is recorded without one). */
function checked(ref: string): string | undefined {
  const parsed = ObjectRef.safeParse(ref);
  return parsed.success ? parsed.data : undefined;
}

/** The stored audit record. */
export const AuditRecord = z.object({
  /** Unique: `<at>#<random>`. */
  id: z.string().min(1),
  /** UTC day of `at` (`2026-12-06`): the partition of the day index. */
  day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  /** When the route answered (ISO-8601, UTC, milliseconds): the sort key of every index. */
  at: z.string(),
  /** User name or host principal (`host:3`, `enroll:web1`). */
  user: z.string().min(1),
  method: z.string().min(1),
  /** The route pattern (`DELETE /vms/{id}`), never the concrete path with its values. */
  route: z.string().min(1),
  object: z.string().optional(),
  /** HTTP status of the answer. */
  status: z.number().int(),
  /** Error name of a refusal (`Forbidden`); never its message (it may echo a value). */
  error: z.string().optional(),
  sourceIp: z.string().optional(),
  requestId: z.string().optional(),
  /** Epoch seconds after which DynamoDB's TTL removes it. */
  expiresAt: z.number().int(),
});
export type AuditRecord = z.infer<typeof AuditRecord>;

/** A record as the API answers it (no keys of the store's own). */
export type AuditView = Omit<AuditRecord, 'id' | 'day' | 'expiresAt'>;

/** The API view of a record. */
export function auditView(record: AuditRecord): AuditView {
  const { id: _id, day: _day, expiresAt: _expires, ...view } = record;
  return view;
}

/** Largest page `GET /audit` answers. */
export const MAX_AUDIT_PAGE = 1000;

/** `GET /audit` query: filters, newest first, paginated with `next`. */
export const AuditQuery = z
  .object({
    user: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be a user name or a host principal (host:N)')
      .optional(),
    object: ObjectRef.optional(),
    since: z
      .string()
      .refine(
        (s) => /^\d{4}-\d{2}-\d{2}/.test(s) && !Number.isNaN(Date.parse(s)),
        'must be an ISO-8601 date or time',
      )
      .transform((s) => new Date(Date.parse(s)).toISOString())
      .optional(),
    limit: z.coerce.number().int().min(1).max(MAX_AUDIT_PAGE).default(100),
    next: z.string().max(2048).optional(),
  })
  .strict();
export type AuditQuery = z.infer<typeof AuditQuery>;

/** Where the next page starts: the day partition (day index only) and DynamoDB's last key. */
export const AuditCursor = z
  .object({
    day: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/)
      .optional(),
    key: z.record(z.string(), z.string().max(256)).optional(),
  })
  .strict();
export type AuditCursor = z.infer<typeof AuditCursor>;

/** The opaque `next` of a cursor. */
export function encodeCursor(cursor: AuditCursor): string {
  return Buffer.from(JSON.stringify(cursor), 'utf8').toString('base64url');
}

/** The cursor of a `next` a client sent back; 400 when it is not one. */
export function decodeCursor(next: string): AuditCursor {
  try {
    return AuditCursor.parse(JSON.parse(Buffer.from(next, 'base64url').toString('utf8')));
  } catch {
    throw new ValidationError('next: not a cursor this API answered');
  }
}

/** The UTC day (`YYYY-MM-DD`) of an ISO time. */
export function dayOf(iso: string): string {
  return iso.slice(0, 10);
}

/** The UTC day before `day`. */
export function previousDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
}

/** How far back an unfiltered listing looks when no `since` is given. */
export const DEFAULT_LIST_DAYS = 30;
