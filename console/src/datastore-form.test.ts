import { describe, expect, it } from 'vitest';
import { attributeLines, attributesToSend, parseAttributeLines } from './datastore-form.ts';

describe('datastore form', () => {
  it('reads KEY=VALUE lines (a value may hold =, blank lines skipped) and says which line is not one', () => {
    expect(parseAttributeLines('RESTIC_REPOSITORY=/srv/r\n\n  RSYNC_ARGS = -a=b \n')).toEqual({
      attributes: { RESTIC_REPOSITORY: '/srv/r', RSYNC_ARGS: '-a=b' },
    });
    expect(parseAttributeLines('BASE_PATH=/x\nnot a pair')).toEqual({
      problem: 'line 2: KEY=VALUE with an upper-case KEY (got "not a pair")',
    });
    expect(parseAttributeLines('=x')).toMatchObject({ problem: expect.stringContaining('line 1') });
  });

  it('writes the stored attributes back as sorted lines', () => {
    expect(attributeLines({ B: '2', A: '1' })).toBe('A=1\nB=2');
  });

  it('sends a typed secret with the attributes, keeps a blank one, refuses one among the lines', () => {
    expect(attributesToSend('restic', 'BASE_PATH=/b', { RESTIC_PASSWORD: 'pw' })).toEqual({
      attributes: { BASE_PATH: '/b', RESTIC_PASSWORD: 'pw' },
    });
    expect(attributesToSend('restic', 'BASE_PATH=/b', { RESTIC_PASSWORD: '' })).toEqual({
      attributes: { BASE_PATH: '/b' },
    });
    expect(attributesToSend('restic', 'RESTIC_PASSWORD=pw', {})).toEqual({
      problem: 'RESTIC_PASSWORD is a secret: type it in its own field, not among the attributes',
    });
  });
});
