import { describe, expect, it } from 'vitest';
import { type EffectiveConfig, effectiveConfig } from './backup-config.ts';
import { type ChainState, canIncrement, chainStateOf, decideChain, selectDisks } from './chain.ts';
import { ValidationError } from './errors.ts';
import type { Image } from './model.ts';

const disk = (id: number, extra: { volatile?: boolean; canIncrement?: boolean } = {}) => ({
  id,
  volatile: extra.volatile ?? false,
  canIncrement: extra.canIncrement ?? true,
});
const config = (over: Partial<EffectiveConfig> = {}): EffectiveConfig => ({
  ...effectiveConfig({}),
  ...over,
});

describe('selectDisks', () => {
  const disks = [disk(0), disk(1, { volatile: true }), disk(2)];

  it('skips volatile disks by default', () => {
    expect(selectDisks(disks, config()).map((d) => d.id)).toEqual([0, 2]);
  });

  it('includes volatile disks with BACKUP_VOLATILE=YES', () => {
    expect(selectDisks(disks, config({ backupVolatile: true })).map((d) => d.id)).toEqual([0, 1, 2]);
  });

  it('honors DISK_IDS', () => {
    expect(selectDisks(disks, config({ diskIds: [2] })).map((d) => d.id)).toEqual([2]);
  });

  it('a volatile disk named in DISK_IDS still needs BACKUP_VOLATILE=YES', () => {
    expect(selectDisks(disks, config({ diskIds: [0, 1] })).map((d) => d.id)).toEqual([0]);
    expect(selectDisks(disks, config({ diskIds: [0, 1], backupVolatile: true })).map((d) => d.id)).toEqual([
      0, 1,
    ]);
  });

  it('rejects DISK_IDS naming a disk the VM lacks', () => {
    expect(() => selectDisks(disks, config({ diskIds: [0, 7] }))).toThrow(
      new ValidationError('DISK_IDS names disk 7, which the VM does not have (disks: 0, 1, 2)'),
    );
  });

  it('rejects an empty selection', () => {
    expect(() => selectDisks([disk(1, { volatile: true })], config())).toThrow(
      'no disk to back up: every selected disk is volatile and BACKUP_VOLATILE is NO',
    );
    expect(() => selectDisks([], config({ backupVolatile: true }))).toThrow(ValidationError);
  });
});

describe('canIncrement', () => {
  it('needs every disk, and at least one', () => {
    expect(canIncrement([disk(0), disk(1)])).toBe(true);
    expect(canIncrement([disk(0), disk(1, { canIncrement: false })])).toBe(false);
    expect(canIncrement([])).toBe(false);
  });
});

describe('decideChain', () => {
  const inc = config({ mode: 'INCREMENT' });
  const chain: ChainState = {
    imageId: 40,
    incrementMode: 'CBT',
    backupVolatile: false,
    diskIds: [0, 2],
    lastIncrementId: 3,
  };
  const disks = [disk(2), disk(0)];

  it('MODE=FULL is a plain full backup, never a reset', () => {
    expect(decideChain({ config: config(), disks, chain, reset: true })).toEqual({
      mode: 'FULL',
      reset: null,
    });
  });

  it('extends a matching chain', () => {
    expect(decideChain({ config: inc, disks, chain, reset: false })).toEqual({
      mode: 'INCREMENT',
      reset: null,
    });
  });

  it.each([
    ['cannot-increment', { disks: [disk(0), disk(2, { canIncrement: false })] }],
    ['requested', { reset: true }],
    ['no-chain', { chain: null }],
    ['mode-changed', { config: config({ mode: 'INCREMENT', incrementMode: 'SNAPSHOT' }) }],
    ['volatile-changed', { config: config({ mode: 'INCREMENT', backupVolatile: true }) }],
    ['disks-changed', { disks: [disk(0)] }],
    ['disks-changed', { disks: [disk(0), disk(2), disk(3)] }],
  ] as const)('starts a new chain with reason %s', (reason, over) => {
    expect(decideChain({ config: inc, disks, chain, reset: false, ...over })).toEqual({
      mode: 'FULL',
      reset: reason,
    });
  });

  it('a requested reset wins over a missing chain; cannot-increment wins over both', () => {
    expect(decideChain({ config: inc, disks, chain: null, reset: true }).reset).toBe('requested');
    expect(
      decideChain({ config: inc, disks: [disk(0, { canIncrement: false })], chain: null, reset: true }).reset,
    ).toBe('cannot-increment');
  });
});

describe('chainStateOf', () => {
  const image: Image = {
    id: 40,
    name: 'vm-3-backup',
    type: 'BACKUP',
    datastoreId: 100,
    vmId: 3,
    state: 'READY',
    mode: 'INCREMENT',
    source: 'abc',
    size: 10,
    disks: [
      { id: 0, size: 1, virtualSize: 1, format: 'qcow2' },
      { id: 2, size: 1, virtualSize: 1, format: 'qcow2' },
    ],
    template: '',
    increments: [
      { id: 0, type: 'FULL', source: 'a', size: 1, date: 'd' },
      { id: 1, parent: 0, type: 'INCREMENT', source: 'b', size: 1, date: 'd' },
    ],
    backupConfig: { MODE: 'INCREMENT', INCREMENT_MODE: 'SNAPSHOT', BACKUP_VOLATILE: 'NO' },
    owner: 'oneadmin',
    group: 'oneadmin',
    permissions: 'um-------',
    createdAt: '2026-01-01T00:00:00Z',
  };

  it('reads the config and disks the chain was started with', () => {
    expect(chainStateOf(image)).toEqual({
      imageId: 40,
      incrementMode: 'SNAPSHOT',
      backupVolatile: false,
      diskIds: [0, 2],
      lastIncrementId: 1,
    });
  });

  it('gives no chain for an image that cannot be extended', () => {
    expect(chainStateOf({ ...image, state: 'ERROR' })).toBeNull();
    expect(chainStateOf({ ...image, mode: 'FULL' })).toBeNull();
    expect(chainStateOf({ ...image, increments: [] })).toBeNull();
    expect(chainStateOf({ ...image, backupConfig: undefined })).toBeNull();
  });
});
