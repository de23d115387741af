import { describe, expect, it } from 'vitest';
import { formatBytes, formatDetails, formatTable, isSecretName, maskAttributes } from './output.ts';

describe('maskAttributes', () => {
  it('masks secret-looking names and keeps the others', () => {
    expect(
      maskAttributes({
        RESTIC_PASSWORD: 'p',
        SSH_KEY: 'k',
        AWS_SECRET: 's',
        BASE_PATH: '/srv',
        RSYNC_HOST: 'h',
      }),
    ).toEqual({
      RESTIC_PASSWORD: '********',
      SSH_KEY: '********',
      AWS_SECRET: '********',
      BASE_PATH: '/srv',
      RSYNC_HOST: 'h',
    });
  });
  it('recognises names in any case', () => {
    expect(isSecretName('restic_password')).toBe(true);
    expect(isSecretName('RESTIC_COMPRESSION')).toBe(false);
  });
});

describe('formatTable', () => {
  it('aligns columns under their headers and shows - for missing values', () => {
    const lines = formatTable(
      [
        { id: 1, name: 'a' },
        { id: 100, name: undefined },
      ],
      [
        { header: 'ID', value: (row) => row.id },
        { header: 'NAME', value: (row) => row.name },
      ],
    );
    expect(lines).toEqual(['ID   NAME', '1    a', '100  -']);
  });
});

describe('formatDetails', () => {
  it('aligns labels and leaves out empty values', () => {
    expect(
      formatDetails([
        ['ID', 3],
        ['LOCK', undefined],
        ['NAME', 'web-1'],
      ]),
    ).toEqual(['ID:   3', 'NAME: web-1']);
  });
});

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(10737418240)).toBe('10.0 GiB');
    expect(formatBytes(undefined)).toBeUndefined();
  });
});
