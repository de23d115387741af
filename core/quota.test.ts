import { describe, expect, it } from 'vitest';
import {
  admits,
  backupCharge,
  chargedKeys,
  exempt,
  givenBack,
  parseQuotaPairs,
  type QuotaEntry,
  quotaKey,
  refusal,
  roomOf,
  settlement,
  UNLIMITED_ROOM,
} from './quota.ts';

const MiB = 1024 ** 2;
const entry = (used: number, limit: number, imagesUsed = 0, imagesLimit = -1): QuotaEntry => ({
  datastore: 100,
  size: { used, limit },
  images: { used: imagesUsed, limit: imagesLimit },
});
const alice = { kind: 'user', name: 'alice' } as const;

describe('quota entries', () => {
  it('names one counters item per owner and scope, and a backup charges four', () => {
    expect(quotaKey(alice, 100)).toBe('quota:user:alice:ds:100');
    expect(quotaKey({ kind: 'group', name: 'web' }, 'all')).toBe('quota:group:web:ds:all');
    expect(chargedKeys('alice', 'web', 7)).toEqual([
      'quota:user:alice:ds:7',
      'quota:user:alice:ds:all',
      'quota:group:web:ds:7',
      'quota:group:web:ds:all',
    ]);
  });

  it.each([
    // used, limit, charge MiB, admitted
    [0, -1, 10 ** 9, true],
    [90, 100, 10, true],
    [90, 100, 11, false],
    [100, 100, 0, true],
    [120, 100, 1, false],
    [120, 100, -20, true],
    [0, 0, 1, false],
  ])('used %i of limit %i admits %i MiB: %s', (used, limit, size, ok) => {
    expect(admits(entry(used, limit), { sizeMiB: size, images: 0 })).toBe(ok);
  });

  it.each([
    [0, -1, 1, true],
    [2, 3, 1, true],
    [3, 3, 1, false],
    [3, 3, 0, true],
  ])('images used %i of limit %i admits %i more: %s', (used, limit, n, ok) => {
    expect(admits(entry(0, -1, used, limit), { sizeMiB: 1, images: n })).toBe(ok);
  });

  it('keeps the room an unlimited entry has far above any charge', () => {
    expect(roomOf(-1, 5)).toBe(UNLIMITED_ROOM - 5);
    expect(roomOf(100, 30)).toBe(70);
    expect(roomOf(100, 130)).toBe(-30);
  });

  it('says who, where and the numbers when it refuses', () => {
    expect(refusal(alice, entry(90, 100), { sizeMiB: 20, images: 1 })).toBe(
      'quota exceeded: user alice on datastore 100: SIZE 90 of 100 MiB used, this backup needs about 20 MiB',
    );
    expect(
      refusal(
        { kind: 'group', name: 'web' },
        { ...entry(0, -1, 2, 2), datastore: 'all' },
        {
          sizeMiB: 1,
          images: 1,
        },
      ),
    ).toBe('quota exceeded: group web on all datastores: IMAGES 2 of 2 used, this backup makes 1 more');
    expect(refusal(alice, entry(10, 100), { sizeMiB: 20, images: 1 })).toBeNull();
  });
});

describe('parseQuotaPairs', () => {
  it('reads SIZE and IMAGES in any case, -1 unlimited', () => {
    expect(parseQuotaPairs({ size: '1024', IMAGES: 3 })).toEqual({ size: 1024, images: 3 });
    expect(parseQuotaPairs({ SIZE: '-1' })).toEqual({ size: -1 });
    expect(parseQuotaPairs({})).toEqual({});
  });

  it.each([
    [{ VMS: '1' }, 'unknown key'],
    [{ SIZE: '1.5' }, 'whole number'],
    [{ SIZE: '-2' }, 'whole number'],
    [{ IMAGES: 'lots' }, 'whole number'],
    [{ SIZE: '' }, 'whole number'],
  ])('refuses %j (%s)', (pairs, message) => {
    expect(() => parseQuotaPairs(pairs)).toThrow(message);
  });
});

describe('backupCharge', () => {
  const estimate = (kind: 'FULL' | 'INCREMENT', bytes: number) => ({ kind, diskIds: [0], bytes });

  it('charges a full backup its estimate in MiB (rounded up) and one image', () => {
    expect(backupCharge(estimate('FULL', 3 * MiB + 1))).toEqual({ sizeMiB: 4, images: 1 });
  });

  it('charges an increment its estimate and no image (it extends the chain image)', () => {
    expect(backupCharge(estimate('INCREMENT', MiB))).toEqual({ sizeMiB: 1, images: 0 });
  });

  it('charges a backup Admit will refuse (no estimate) its image, nothing more', () => {
    expect(backupCharge(null)).toEqual({ sizeMiB: 0, images: 1 });
  });
});

describe('who is charged, and what Commit settles', () => {
  const reserved = { user: 'alice', group: 'web', datastoreId: 1, sizeMiB: 10, images: 1 };
  const keys = (user: string, group: string, ds: number) => [
    `quota:user:${user}:ds:${ds}`,
    `quota:user:${user}:ds:all`,
    `quota:group:${group}:ds:${ds}`,
    `quota:group:${group}:ds:all`,
  ];
  const each = (k: string[], charge: { sizeMiB: number; images: number }) => k.map((key) => [key, charge]);

  it('exempts the user admin and the admin group only', () => {
    expect([exempt('admin', 'web'), exempt('alice', 'admin'), exempt('alice', 'web')]).toEqual([
      true,
      true,
      false,
    ]);
  });

  it('gives a reservation back on its four entries', () => {
    expect(givenBack(reserved, reserved)).toEqual(
      each(keys('alice', 'web', 1), { sizeMiB: -10, images: -1 }),
    );
    expect(givenBack(reserved, { sizeMiB: 0, images: 0 })).toEqual([]);
  });

  it('settles a new image: the reservation back, its real MiB (rounded up) and one image charged', () => {
    const image = { mode: 'FULL' as const, increments: [], datastoreId: 1, quota: undefined };
    expect(settlement(reserved, image, 3 * MiB + 1)).toEqual({
      charges: each(keys('alice', 'web', 1), { sizeMiB: -6, images: 0 }),
      recorded: { user: 'alice', group: 'web', sizeMiB: 4 },
    });
  });

  it("charges a chain's point to whoever the chain counts against, and no image", () => {
    const point = { id: 1, type: 'INCREMENT' as const, source: 's1', size: 2 * MiB, date: '' };
    const chain = {
      mode: 'INCREMENT' as const,
      increments: [{ ...point, id: 0 }, point],
      datastoreId: 1,
      quota: { user: 'bob', group: 'web', sizeMiB: 5 },
    };
    const { charges, recorded } = settlement({ ...reserved, images: 0 }, chain, 2 * MiB);
    expect(Object.fromEntries(charges)).toEqual({
      'quota:user:alice:ds:1': { sizeMiB: -10, images: 0 },
      'quota:user:alice:ds:all': { sizeMiB: -10, images: 0 },
      'quota:user:bob:ds:1': { sizeMiB: 2, images: 0 },
      'quota:user:bob:ds:all': { sizeMiB: 2, images: 0 },
      'quota:group:web:ds:1': { sizeMiB: -8, images: 0 },
      'quota:group:web:ds:all': { sizeMiB: -8, images: 0 },
    });
    expect(recorded).toEqual({ user: 'bob', group: 'web', sizeMiB: 7 });
  });
});
