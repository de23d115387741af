import { describe, expect, it } from 'vitest';
import { Image } from '#core/model.ts';
import { describeImage } from './image.ts';

const base = {
  id: 40,
  name: '7-backup',
  type: 'BACKUP',
  datastoreId: 100,
  vmId: 7,
  state: 'READY',
  mode: 'FULL',
  source: 'a1b2c3d4e5f60718',
  size: 512,
  disks: [{ id: 0, size: 512, virtualSize: 1024, format: 'raw', file: 'disk.0.raw' }],
  owner: 'alice',
  group: 'users',
  permissions: 'um-------',
  createdAt: '2026-12-06T15:59:00.000Z',
};

describe('image show (columns)', () => {
  it("shows each disk's sha256 and when the image was verified", () => {
    const sha256 = 'ab'.repeat(32);
    const image = Image.parse({
      ...base,
      disks: [{ ...base.disks[0], sha256 }],
      verifiedAt: '2026-12-06T16:00:00.000Z',
    });
    const lines = describeImage(image);
    expect(lines).toContainEqual(expect.stringMatching(/^VERIFIED:\s+2026-12-06T16:00:00\.000Z$/));
    const header = lines.find((l) => l.startsWith('ID') && l.includes('SHA256')) ?? '';
    expect(lines[lines.indexOf(header) + 1]).toMatch(new RegExp(`disk\\.0\\.raw\\s+${sha256}$`));
  });

  it('an image from before verification (still valid) says never', () => {
    const lines = describeImage(Image.parse(base));
    expect(lines).toContainEqual(expect.stringMatching(/^VERIFIED:\s+never$/));
  });
});
