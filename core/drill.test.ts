import { describe, expect, it } from 'vitest';
import { domainNameProblem } from './domain-name.ts';
import {
  bootedPoints,
  drillDomainName,
  drillIdOfDomain,
  drillPoints,
  drillSample,
  drillTemplate,
  sumMismatch,
} from './drill.ts';
import { Image } from './model.ts';

const sha = (c: string) => c.repeat(64);
const base = {
  id: 40,
  name: '7-backup',
  type: 'BACKUP',
  datastoreId: 100,
  vmId: 7,
  state: 'READY',
  owner: 'alice',
  group: 'users',
  permissions: 'um-------',
  createdAt: '2026-12-06T15:59:00.000Z',
};

describe('drill domain names', () => {
  it('are built from the drill id only, and are names virsh reads as names', () => {
    expect(drillDomainName(12)).toBe('lifeboat-drill-12');
    expect(domainNameProblem(drillDomainName(12))).toBeUndefined();
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 60])
      expect(() => drillDomainName(bad)).toThrow(/drillId/);
  });

  it('are told apart from other domains', () => {
    expect(drillIdOfDomain('lifeboat-drill-12')).toBe(12);
    for (const other of [
      'lifeboat-drill-',
      'lifeboat-drill-012',
      'lifeboat-drill-1x',
      'web-1',
      'x-lifeboat-drill-1',
    ])
      expect(drillIdOfDomain(other)).toBeUndefined();
  });
});

describe('drillTemplate', () => {
  it('renames the VM to the drill name, drops its UUID and every NIC (PCI ones too), keeps the disks', () => {
    const xml = drillTemplate(
      `<domain type='kvm'><name>web-1</name><uuid>0b7e2b5c-1f1e-4c1b-9d55-2b1f0c3f9a10</uuid><devices>
        <disk type='file' device='disk'><source file='/images/web-1.qcow2'/><target dev='vda'/></disk>
        <interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='prod'/></interface>
        <interface type='hostdev'><source><address type='pci' domain='0' bus='6' slot='2' function='0'/></source></interface>
        <interface type='bridge'><source bridge='br0'/></interface>
      </devices></domain>`,
      7,
    );
    expect(xml).toContain('<name>lifeboat-drill-7</name>');
    expect(xml).not.toContain('web-1</name>');
    expect(xml).not.toContain('<uuid>');
    expect(xml).not.toMatch(/<interface|52:54:00|br0|prod/);
    expect(xml).toContain('<target dev="vda"/>');
  });
});

describe('drillPoints: what a drill reads and checks', () => {
  it('a FULL image: one point, each disk with its recorded sha256 (null when none)', () => {
    const image = Image.parse({
      ...base,
      mode: 'FULL',
      source: 'full-1',
      disks: [
        { id: 0, size: 1, virtualSize: 1, format: 'raw', file: 'disk.0.raw', sha256: sha('a') },
        { id: 1, size: 1, virtualSize: 1, format: 'raw', file: 'disk.1.raw' },
      ],
    });
    expect(drillPoints(image)).toEqual([
      {
        backupId: 'full-1',
        disks: [
          { id: 0, file: 'disk.0.raw', sha256: sha('a') },
          { id: 1, file: 'disk.1.raw', sha256: null },
        ],
      },
    ]);
  });

  it('a chain: the FULL then every increment, oldest first, each file with its own sum', () => {
    const image = Image.parse({
      ...base,
      mode: 'INCREMENT',
      source: 'full-1',
      disks: [{ id: 0, size: 1, virtualSize: 1, format: 'qcow2', file: 'disk.0.qcow2' }],
      increments: [
        {
          id: 1,
          type: 'INCREMENT',
          parent: 0,
          source: 'inc-1',
          size: 1,
          date: 'x',
          disks: [{ id: 0, file: 'disk.0.inc1.qcow2', size: 1, sha256: sha('c') }],
        },
        {
          id: 0,
          type: 'FULL',
          source: 'full-1',
          size: 1,
          date: 'x',
          disks: [{ id: 0, file: 'disk.0.qcow2', size: 1, sha256: sha('b') }],
        },
      ],
    });
    expect(drillPoints(image)).toEqual([
      { backupId: 'full-1', disks: [{ id: 0, file: 'disk.0.qcow2', sha256: sha('b') }] },
      { backupId: 'inc-1', disks: [{ id: 0, file: 'disk.0.inc1.qcow2', sha256: sha('c') }] },
    ]);
  });

  it('an image without disks cannot be drilled', () => {
    expect(() => drillPoints(Image.parse({ ...base, mode: 'FULL', source: 'full-1' }))).toThrow(/no disk/);
  });
});

describe('drillSample: which images a scheduled drill restores', () => {
  const img = (id: number, verifiedAt?: string, state: Image['state'] = 'READY', template = '<domain/>') => ({
    id,
    state,
    template,
    ...(verifiedAt && { verifiedAt }),
  });
  const images = [
    img(1, '2026-12-01T00:00:00Z'),
    img(2),
    img(3, '2026-11-01T00:00:00Z'),
    img(4, undefined, 'LOCKED'),
    img(5, undefined, 'READY', ''),
    img(6),
    img(7, '2026-12-01T00:00:00Z'),
  ];
  it.each([
    [1, [2]],
    [2, [2, 6]],
    [3, [2, 6, 3]],
    [5, [2, 6, 3, 1, 7]],
    [9, [2, 6, 3, 1, 7]],
    [0, []],
  ])('%i image(s): never verified first, then the least recently verified, ties by id: %j', (count, ids) => {
    expect(drillSample(images, count).map((i) => i.id)).toEqual(ids);
  });
  it('run after run, every image gets its turn (each drill records verifiedAt)', () => {
    const pool = images.map((i) => ({ ...i }));
    const seen = new Set<number>();
    for (let run = 0; run < 5; run++) {
      const [next] = drillSample(pool, 1);
      if (!next) break;
      seen.add(next.id);
      next.verifiedAt = `2026-12-1${run}T00:00:00Z`;
    }
    expect([...seen].sort()).toEqual([1, 2, 3, 6, 7]);
  });
});

describe('bootedPoints', () => {
  it('every point, or only the latest', () => {
    expect(bootedPoints(3, false)).toEqual([0, 1, 2]);
    expect(bootedPoints(3, true)).toEqual([2]);
    expect(bootedPoints(1, true)).toEqual([0]);
    expect(bootedPoints(0, false)).toEqual([]);
  });
});

describe('sumMismatch', () => {
  const disk = { id: 1, file: 'disk.1.raw', sha256: sha('a') };
  it('names the disk, the file and the backup when the restored bytes differ', () => {
    expect(sumMismatch(disk, 'full-1', sha('b'))).toBe(
      `disk 1: disk.1.raw of backup full-1 restored with sha256 ${sha('b')}, not the ${sha('a')} recorded at backup time`,
    );
  });
  it('nothing when it matches or when nothing was recorded', () => {
    expect(sumMismatch(disk, 'full-1', sha('a'))).toBeUndefined();
    expect(sumMismatch({ ...disk, sha256: null }, 'full-1', sha('b'))).toBeUndefined();
  });
});
