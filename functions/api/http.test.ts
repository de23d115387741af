import { describe, expect, it } from 'vitest';
import { Conflict, NotFound, ValidationError } from '#core/errors.ts';
import { bearerToken, hashToken } from './auth.ts';
import { errorResponse, MAX_MESSAGE_LENGTH, parseJsonBody, pathId } from './http.ts';

const body = (r: { body?: string }) => JSON.parse(r.body ?? '');

describe('error mapping', () => {
  it('answers typed errors with their status, name and message', () => {
    expect(errorResponse(new NotFound('VM 7 does not exist'), 'r1')).toMatchObject({ statusCode: 404 });
    expect(body(errorResponse(new NotFound('VM 7 does not exist'), 'r1'))).toEqual({
      error: 'NotFound',
      message: 'VM 7 does not exist',
    });
    expect(errorResponse(new Conflict('locked'), 'r1').statusCode).toBe(409);
    expect(errorResponse(new ValidationError('name: required'), 'r1').statusCode).toBe(400);
  });

  it('answers one short line whatever a check quoted from the request', () => {
    const quoted = new ValidationError('BASE_PATH: bad (got "/srv\n{"level":"error"}\u001b[2J")');
    expect(body(errorResponse(quoted, 'r1')).message).toBe(
      'BASE_PATH: bad (got "/srv\\u000a{"level":"error"}\\u001b[2J")',
    );
    const long = body(errorResponse(new ValidationError(`x: bad (got "${'a'.repeat(10_000)}")`), 'r1'));
    expect(long.message).toHaveLength(MAX_MESSAGE_LENGTH);
    expect(long.message.endsWith('…')).toBe(true);
  });

  it('hides the details of unexpected errors behind a 500', () => {
    const original = console.error;
    const lines: string[] = [];
    console.error = (line: string) => lines.push(line);
    try {
      const res = errorResponse(new Error('connect ECONNREFUSED 10.0.0.1'), 'req-42', 'GET /vms');
      expect(res.statusCode).toBe(500);
      expect(body(res)).toEqual({ error: 'InternalError', message: 'internal error' });
      expect(res.body).not.toContain('ECONNREFUSED');
      expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
        level: 'error',
        requestId: 'req-42',
        route: 'GET /vms',
      });
    } finally {
      console.error = original;
    }
  });
});

describe('request parsing', () => {
  it('parses JSON bodies, base64 ones too, and rejects bad JSON with a 400', () => {
    expect(parseJsonBody({ body: '{"a":1}', isBase64Encoded: false })).toEqual({ a: 1 });
    expect(parseJsonBody({ body: Buffer.from('{"b":2}').toString('base64'), isBase64Encoded: true })).toEqual(
      { b: 2 },
    );
    expect(parseJsonBody({ body: '', isBase64Encoded: false })).toBeUndefined();
    expect(() => parseJsonBody({ body: '{nope', isBase64Encoded: false })).toThrow(
      'body: must be valid JSON',
    );
  });

  it('reads numeric path ids and names a bad one', () => {
    const ctx = (id: string) => ({
      route: 'GET /vms/{id}',
      params: { id },
      query: {},
      body: undefined,
      user: {} as never,
      requestId: 'r',
    });
    expect(pathId(ctx('63'))).toBe(63);
    expect(() => pathId(ctx('abc'))).toThrow('id: must be a non-negative integer (got "abc")');
    expect(() => pathId(ctx('-1'))).toThrow(ValidationError);
  });
});

describe('auth', () => {
  it('hashes tokens with sha256 hex', () => {
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('reads the bearer token from any header case and refuses anything else', () => {
    expect(bearerToken({ authorization: 'Bearer t0k' })).toBe('t0k');
    expect(bearerToken({ Authorization: 'bearer t0k' })).toBe('t0k');
    expect(() => bearerToken({})).toThrow('missing bearer token');
    expect(() => bearerToken({ authorization: 'Basic dXNlcg==' })).toThrow('missing bearer token');
  });
});
