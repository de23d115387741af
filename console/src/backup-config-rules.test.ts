import { describe, expect, it } from 'vitest';
import { changedPairs, checkValue } from './backup-config-rules.ts';

describe('BACKUP_CONFIG form rules', () => {
  it('refuse what the API refuses, with its message', () => {
    expect(checkValue('KEEP_LAST', '-1')).toBe('KEEP_LAST must be a non-negative integer (got "-1")');
    expect(checkValue('MODE', 'SOMETIMES')).toBe('MODE must be one of FULL, INCREMENT (got "SOMETIMES")');
    expect(checkValue('DISK_IDS', '0,x')).toBe(
      'DISK_IDS must be a comma-separated list of disk ids (got "0,x")',
    );
    expect(checkValue('FS_FREEZE', 'agent')).toBeUndefined();
    expect(checkValue('KEEP_LAST', '')).toBeUndefined();
    expect(checkValue('DISK_IDS', '0, 2')).toBeUndefined();
  });

  it('send only the keys that changed, an emptied one as unset', () => {
    expect(changedPairs({ MODE: 'FULL', KEEP_LAST: '3' }, { MODE: 'INCREMENT', KEEP_LAST: '' })).toEqual({
      MODE: 'INCREMENT',
      KEEP_LAST: '',
    });
    expect(changedPairs({ MODE: 'FULL' }, { MODE: 'FULL' })).toEqual({});
  });
});
