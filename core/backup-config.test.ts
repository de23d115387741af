import { describe, expect, it } from 'vitest';
import { effectiveConfig, parse, setRuntime, underDefaults, update, withDefaults } from './backup-config.ts';
import { ValidationError } from './errors.ts';

const can = { canIncrement: true };
const cannot = { canIncrement: false };

function rejection(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as Error).message;
  }
  throw new Error('expected a ValidationError');
}

describe('effectiveConfig defaults', () => {
  it('applies the reference defaults to an empty record', () => {
    expect(effectiveConfig({})).toEqual({
      keepLast: null,
      gfs: null,
      backupVolatile: false,
      fsFreeze: 'NONE',
      mode: 'FULL',
      incrementMode: 'CBT',
      diskIds: null,
    });
  });

  it('reads GFS retention when a period key is set, with KEEP_LAST as its last', () => {
    expect(effectiveConfig({ KEEP_LAST: '2', KEEP_DAILY: '7', KEEP_YEARLY: '3' }).gfs).toEqual({
      last: 2,
      hourly: 0,
      daily: 7,
      weekly: 0,
      monthly: 0,
      yearly: 3,
    });
    expect(effectiveConfig({ KEEP_LAST: '2', KEEP_WEEKLY: '0' }).gfs).toBeNull();
    expect(update({}, { keep_monthly: '12' }, can)).toEqual({ KEEP_MONTHLY: '12' });
    expect(rejection(() => parse({ KEEP_DAILY: '-1' }, can))).toBe(
      'KEEP_DAILY must be a non-negative integer (got "-1")',
    );
    expect(withDefaults({ KEEP_WEEKLY: '4' }).KEEP_WEEKLY).toBe('4');
  });

  it('treats KEEP_LAST 0 and empty as keep all', () => {
    expect(effectiveConfig({ KEEP_LAST: '0' }).keepLast).toBeNull();
    expect(effectiveConfig({ KEEP_LAST: '' }).keepLast).toBeNull();
    expect(effectiveConfig({ KEEP_LAST: '4' }).keepLast).toBe(4);
  });

  it('types every set value', () => {
    const record = update(
      {},
      {
        BACKUP_VOLATILE: 'yes',
        FS_FREEZE: 'suspend',
        MODE: 'increment',
        INCREMENT_MODE: 'snapshot',
        DISK_IDS: '2,0',
      },
      can,
    );
    expect(effectiveConfig(record)).toEqual({
      keepLast: null,
      gfs: null,
      backupVolatile: true,
      fsFreeze: 'SUSPEND',
      mode: 'INCREMENT',
      incrementMode: 'SNAPSHOT',
      diskIds: [0, 2],
    });
  });

  it('ignores runtime keys', () => {
    expect(effectiveConfig({ LAST_BACKUP_ID: 'abc', MODE: 'FULL' }).mode).toBe('FULL');
  });

  it('rejects a corrupt stored value instead of guessing', () => {
    expect(rejection(() => effectiveConfig({ FS_FREEZE: 'HOT' }))).toContain('FS_FREEZE must be one of');
  });

  it('withDefaults shows every user key and keeps runtime keys', () => {
    expect(withDefaults({ KEEP_LAST: '3', LAST_INCREMENT_ID: '2' })).toEqual({
      KEEP_LAST: '3',
      BACKUP_VOLATILE: 'NO',
      FS_FREEZE: 'NONE',
      MODE: 'FULL',
      INCREMENT_MODE: 'CBT',
      DISK_IDS: '',
      LAST_INCREMENT_ID: '2',
    });
  });
});

describe('parse', () => {
  it('folds key and value case and trims', () => {
    expect(parse({ fs_freeze: ' Agent ', Mode: 'full', backup_volatile: 'no' }, can)).toEqual({
      FS_FREEZE: 'AGENT',
      MODE: 'FULL',
      BACKUP_VOLATILE: 'NO',
    });
  });

  it('normalizes numbers and disk lists', () => {
    expect(parse({ KEEP_LAST: '007', DISK_IDS: ' 3, 1,3 ' }, can)).toEqual({
      KEEP_LAST: '7',
      DISK_IDS: '1,3',
    });
    expect(parse({ KEEP_LAST: 5 }, can)).toEqual({ KEEP_LAST: '5' });
  });

  it('keeps empty values as unset markers', () => {
    expect(parse({ KEEP_LAST: '' }, can)).toEqual({ KEEP_LAST: '' });
  });

  it('names the key and the allowed values of every enumerated key', () => {
    expect(rejection(() => parse({ FS_FREEZE: 'foo' }, can))).toBe(
      'FS_FREEZE must be one of NONE, AGENT, SUSPEND (got "foo")',
    );
    expect(rejection(() => parse({ MODE: 'diff' }, can))).toBe(
      'MODE must be one of FULL, INCREMENT (got "diff")',
    );
    expect(rejection(() => parse({ INCREMENT_MODE: 'x' }, can))).toBe(
      'INCREMENT_MODE must be one of CBT, SNAPSHOT (got "x")',
    );
    expect(rejection(() => parse({ BACKUP_VOLATILE: 'true' }, can))).toBe(
      'BACKUP_VOLATILE must be one of YES, NO (got "true")',
    );
  });

  it('rejects a KEEP_LAST that is not a non-negative integer', () => {
    for (const bad of ['-1', '2.5', 'three', '1e3']) {
      expect(rejection(() => parse({ KEEP_LAST: bad }, can))).toBe(
        `KEEP_LAST must be a non-negative integer (got "${bad}")`,
      );
    }
  });

  it('rejects a malformed DISK_IDS', () => {
    expect(rejection(() => parse({ DISK_IDS: '0,,1' }, can))).toBe(
      'DISK_IDS must be a comma-separated list of disk ids (got "0,,1")',
    );
    expect(rejection(() => parse({ DISK_IDS: 'vda' }, can))).toContain('DISK_IDS must be');
  });

  it('rejects unknown keys listing the allowed ones', () => {
    expect(rejection(() => parse({ keeplast: '3' }, can))).toBe(
      'unknown BACKUP_CONFIG key "KEEPLAST"; allowed: KEEP_LAST, KEEP_HOURLY, KEEP_DAILY, KEEP_WEEKLY, KEEP_MONTHLY, KEEP_YEARLY, BACKUP_VOLATILE, FS_FREEZE, MODE, INCREMENT_MODE, DISK_IDS',
    );
  });

  it('refuses every runtime key', () => {
    for (const key of [
      'LAST_DATASTORE_ID',
      'LAST_BACKUP_ID',
      'LAST_BACKUP_SIZE',
      'LAST_INCREMENT_ID',
      'INCREMENTAL_BACKUP_ID',
      'ACTIVE_FLATTEN',
      'BACKUP_JOB_ID',
    ]) {
      expect(rejection(() => parse({ [key.toLowerCase()]: '1' }, can))).toBe(
        `BACKUP_CONFIG key "${key}" is managed by Lifeboat and cannot be set`,
      );
    }
  });

  it('rejects the same key twice in different cases', () => {
    expect(rejection(() => parse({ MODE: 'FULL', mode: 'FULL' }, can))).toBe(
      'BACKUP_CONFIG key MODE given more than once',
    );
  });

  it('accepts MODE=INCREMENT only when every disk can increment', () => {
    expect(parse({ MODE: 'increment' }, can)).toEqual({ MODE: 'INCREMENT' });
    expect(rejection(() => parse({ MODE: 'increment' }, cannot))).toBe(
      'MODE INCREMENT needs every disk of the VM to support incremental backups',
    );
    expect(parse({ MODE: 'full' }, cannot)).toEqual({ MODE: 'FULL' });
  });
});

describe('update (updateconf)', () => {
  const current = { KEEP_LAST: '3', FS_FREEZE: 'AGENT', LAST_INCREMENT_ID: '4' };

  it('replace mode changes the keys given and keeps the rest, runtime keys included', () => {
    expect(update(current, { keep_last: '5', mode: 'increment' }, can)).toEqual({
      KEEP_LAST: '5',
      FS_FREEZE: 'AGENT',
      MODE: 'INCREMENT',
      LAST_INCREMENT_ID: '4',
    });
  });

  it('an empty value unsets a key back to its default', () => {
    const next = update(current, { FS_FREEZE: '' }, can);
    expect(next).toEqual({ KEEP_LAST: '3', LAST_INCREMENT_ID: '4' });
    expect(effectiveConfig(next).fsFreeze).toBe('NONE');
  });

  it('append mode only adds keys that are not set', () => {
    expect(
      update(
        current,
        { KEEP_LAST: '9', FS_FREEZE: 'suspend', BACKUP_VOLATILE: 'yes' },
        { ...can, append: true },
      ),
    ).toEqual({ KEEP_LAST: '3', FS_FREEZE: 'AGENT', BACKUP_VOLATILE: 'YES', LAST_INCREMENT_ID: '4' });
  });

  it('append mode fills a key that is set to empty', () => {
    expect(update({ KEEP_LAST: '' }, { KEEP_LAST: '2' }, { ...can, append: true })).toEqual({
      KEEP_LAST: '2',
    });
  });

  it('bad input changes nothing and does not mutate the current record', () => {
    const before = structuredClone(current);
    expect(rejection(() => update(current, { KEEP_LAST: '1', FS_FREEZE: 'bad' }, can))).toContain(
      'FS_FREEZE',
    );
    expect(current).toEqual(before);
    update(current, { KEEP_LAST: '1' }, can);
    expect(current).toEqual(before);
  });

  it('refuses MODE=INCREMENT for a VM with a disk that cannot increment', () => {
    expect(() => update({}, { MODE: 'INCREMENT' }, cannot)).toThrow(ValidationError);
  });
});

describe('setRuntime', () => {
  it('sets and clears runtime keys, keeping user keys', () => {
    const started = setRuntime({ KEEP_LAST: '2' }, { LAST_BACKUP_ID: 'abc', LAST_DATASTORE_ID: 100 });
    expect(started).toEqual({ KEEP_LAST: '2', LAST_BACKUP_ID: 'abc', LAST_DATASTORE_ID: '100' });
    expect(setRuntime(started, { LAST_BACKUP_ID: null, LAST_DATASTORE_ID: null })).toEqual({
      KEEP_LAST: '2',
    });
  });

  it('refuses user keys', () => {
    expect(() => setRuntime({}, { KEEP_LAST: '1' } as never)).toThrow(
      '"KEEP_LAST" is not a runtime BACKUP_CONFIG key',
    );
  });
});

describe("underDefaults (a backup job's BACKUP_CONFIG under the VM's)", () => {
  it("fills the keys the VM leaves unset or empty; the VM's own values and runtime keys stay", () => {
    const vm = { MODE: 'FULL', KEEP_LAST: '', LAST_INCREMENT_ID: '3' };
    const job = {
      MODE: 'INCREMENT',
      KEEP_LAST: '4',
      FS_FREEZE: 'SUSPEND',
      RESET: 'YES',
      LAST_INCREMENT_ID: '9',
    };
    expect(underDefaults(vm, job)).toEqual({
      MODE: 'FULL',
      KEEP_LAST: '4',
      FS_FREEZE: 'SUSPEND',
      LAST_INCREMENT_ID: '3',
    });
    expect(effectiveConfig(underDefaults({}, job))).toMatchObject({ mode: 'INCREMENT', keepLast: 4 });
  });
});
