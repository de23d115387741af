import { describe, expect, it } from 'vitest';
import { AuditQuery, auditObject, decodeCursor, encodeCursor, previousDay } from './audit.ts';

describe('auditObject', () => {
  it.each([
    ['DELETE /vms/{id}', { id: '63' }, undefined, 'vm/63'],
    ['POST /vms/{id}/backup', { id: '63' }, undefined, 'vm/63'],
    ['DELETE /vms/{id}/schedules/{schedId}', { id: '63', schedId: '2' }, undefined, 'vm/63'],
    ['POST /jobs/{id}/retry', { id: '4' }, undefined, 'backupjob/4'],
    ['PUT /runner/hosts/{id}/key', { id: '3' }, undefined, 'host/3'],
    ['PATCH /users/{name}', { name: 'alice' }, undefined, 'user/alice'],
    ['DELETE /tokens/{tokenId}', { tokenId: '0123456789abcdef' }, undefined, 'token/0123456789abcdef'],
    ['POST /datastores', {}, { statusCode: 201, body: { id: 101, name: 'ds' } }, 'datastore/101'],
    ['POST /groups', {}, { statusCode: 201, body: { name: 'web' } }, 'group/web'],
    // A refused create made nothing; a route naming no kind of object has none.
    ['POST /datastores', {}, { statusCode: 400, body: { error: 'ValidationError' } }, undefined],
    ['POST /downloads', {}, { statusCode: 202, body: { id: 'x' } }, undefined],
    // A bad path parameter is recorded without an object (it could hold anything).
    ['DELETE /vms/{id}', { id: '../x y' }, undefined, undefined],
  ] as const)('%s %j -> %s', (route, params, reply, object) => {
    expect(auditObject(route, params, reply)).toBe(object);
  });
});

describe('AuditQuery', () => {
  it('takes job/N for backupjob/N and normalizes since to UTC', () => {
    expect(AuditQuery.parse({ object: 'job/4', since: '2026-12-01T01:00:00+01:00' })).toEqual({
      object: 'backupjob/4',
      since: '2026-12-01T00:00:00.000Z',
      limit: 100,
    });
  });
});

describe('cursor and days', () => {
  it('round-trips a cursor and refuses a forged one with 400', () => {
    const cursor = { day: '2026-12-06', key: { id: 'a', day: '2026-12-06', at: 'b' } };
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
    expect(() => decodeCursor('e30x')).toThrow(/next: not a cursor/);
    expect(() => decodeCursor(Buffer.from('{"key":{"id":{"S":"x"}}}').toString('base64url'))).toThrow(/next/);
  });

  it('walks back over month and year ends', () => {
    expect(previousDay('2026-03-01')).toBe('2026-02-28');
    expect(previousDay('2027-01-01')).toBe('2026-12-31');
  });
});
