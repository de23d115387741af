/**
 * `GET /audit?user=&object=KIND/ID&since=ISO&limit=&next=`: the audit trail, newest first, for
 * admins only (it names every user's actions and addresses). `next` in the answer continues it.
 */
import { AuditQuery, auditView, decodeCursor, encodeCursor } from '#core/audit.ts';
import { queryAudit } from '../../repo/audit.ts';
import { json, parseQuery, type RouteHandler } from '../http.ts';

/** `GET /audit`: `{ items, next? }`. */
const list: RouteHandler = async (ctx) => {
  const query = parseQuery(AuditQuery, ctx);
  const page = await queryAudit(query, query.next === undefined ? {} : decodeCursor(query.next));
  return json({
    items: page.items.map(auditView),
    ...(page.next ? { next: encodeCursor(page.next) } : {}),
  });
};

/** Audit routes by route key. */
export const auditRoutes: Record<string, RouteHandler> = { 'GET /audit': list };
