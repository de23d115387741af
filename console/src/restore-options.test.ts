import { describe, expect, it } from 'vitest';
import { type RestoreChoices, restoreBody, restoreProblems } from './restore-options.ts';

const base: RestoreChoices = {
  target: 'new',
  name: '',
  targetDir: '',
  noIp: false,
  noNic: false,
  start: false,
  confirmation: '',
};

describe('restore wizard body', () => {
  it('sends what was chosen and nothing else', () => {
    expect(restoreBody({ ...base, targetDir: 'restored/web', noIp: true, incrementId: 2 })).toEqual({
      incrementId: 2,
      targetDir: 'restored/web',
      noIp: true,
    });
    expect(restoreBody({ ...base, name: 'web-copy', hostId: 4, start: true, noNic: true })).toEqual({
      name: 'web-copy',
      hostId: 4,
      start: true,
      noNic: true,
    });
  });

  it('in place: the overwrite confirmed, and only when the VM name is typed', () => {
    const inPlace = { ...base, target: 'inPlace' as const, name: 'ignored', noIp: true };
    expect(restoreBody(inPlace)).toEqual({ inPlace: true, confirmOverwrite: true });
    expect(restoreProblems(inPlace, 'web').confirmation).toBe('Type web to confirm the overwrite');
    expect(restoreProblems({ ...inPlace, confirmation: 'web' }, 'web')).toEqual({});
  });

  it('refuses a name or folder the API refuses', () => {
    expect(restoreProblems({ ...base, name: '-bad' }, 'web').name).toBeDefined();
    expect(restoreProblems({ ...base, targetDir: 'a b' }, 'web').targetDir).toBeDefined();
    expect(restoreProblems({ ...base, start: true, diskId: 0 }, 'web').start).toBeDefined();
  });
});
