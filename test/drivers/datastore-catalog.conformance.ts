/**
 * The catalog part of the datastore conformance (issue 14, a catalog that can be rebuilt): what
 * a driver's `catalog` answers from the datastore alone, after FULL backups of two VMs, an
 * increment chain (a FULL then `disk.0.inc1.qcow2` under one image id) and an interrupted
 * backup. A driver's test file calls {@link catalogConformance} with its target factory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogBackup } from '#drivers/datastore/driver.ts';
import type { ConformanceTarget } from './datastore.conformance.ts';

const template = (vmId: number) => `<domain type="kvm"><name>h14import-${vmId}</name></domain>\n`;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

export function catalogConformance(name: string, makeTarget: () => Promise<ConformanceTarget>): void {
  describe(`datastore catalog: ${name}`, () => {
    let t: ConformanceTarget;
    let work: string;
    const made: { vmId: number; imageId: number; backupId: string; files: Map<string, Buffer> }[] = [];

    async function backup(vmId: number, imageId: number, names: string[]) {
      const files = new Map(names.map((n) => [n, randomBytes(64 * 1024 + vmId)] as const));
      const inputs = [];
      for (const [n, data] of files) {
        const path = join(work, `${vmId}-${imageId}-${n}`);
        await writeFile(path, data);
        inputs.push({ name: n, source: { kind: 'file' as const, path } });
      }
      const out = await t.driver.backup(t.target(), {
        vmId,
        imageId,
        files: inputs,
        template: template(vmId),
      });
      made.push({ vmId, imageId, backupId: out.backupId, files });
    }

    beforeAll(async () => {
      t = await makeTarget();
      work = await mkdtemp(join(tmpdir(), 'lifeboat-h14import-catalog-'));
      await backup(41, 410, ['disk.0.raw', 'disk.1.raw']);
      await backup(41, 411, ['disk.0.raw', 'disk.1.raw']);
      await backup(42, 420, ['disk.0.raw']);
      await backup(42, 420, ['disk.0.inc1.qcow2']);
    }, 120_000);
    afterAll(async () => {
      await t?.stop();
      await rm(work, { recursive: true, force: true });
    });

    it('lists every complete backup with its VM, image, files, sizes and template', async () => {
      const catalog = await t.driver.catalog(t.target());
      const byId = new Map(catalog.map((b) => [b.backupId, b] as const));
      expect(catalog).toHaveLength(made.length);
      for (const m of made) {
        const found = byId.get(m.backupId) as CatalogBackup;
        expect(found, m.backupId).toBeDefined();
        expect(found.vmId).toBe(m.vmId);
        expect(found.imageId).toBe(m.imageId);
        expect(found.jobId).toBeNull();
        expect(found.template).toBe(template(m.vmId));
        expect(Number.isNaN(Date.parse(found.time))).toBe(false);
        expect(found.files.map((f) => f.name).sort()).toEqual([...m.files.keys()].sort());
        for (const f of found.files) {
          const data = m.files.get(f.name) as Buffer;
          expect(f.size).toBe(data.length);
          // Stored where the driver stores one (rsync's SHA256SUMS); restic stores none.
          expect(f.sha256).toBe(t.driver.name === 'rsync' ? sha256(data) : null);
        }
      }
    });

    it('leaves out a backup that was interrupted, and answers the same again', async () => {
      const first = await t.driver.catalog(t.target());
      // An interrupted backup: every file stored, but not the mark that completes it (a crash
      // leaves that; a failed backup's own cleanup would remove the rest as well).
      await backup(43, 430, ['disk.0.raw']);
      const interrupted = made.pop() as (typeof made)[number];
      await t.interrupt(interrupted);
      const again = await t.driver.catalog(t.target());
      expect(again.filter((b) => b.vmId === 43)).toEqual([]);
      const key = (c: CatalogBackup[]) => c.map((b) => b.backupId).sort();
      expect(key(again)).toEqual(key(first));
    });

    it('answers an empty list for an empty datastore', async () => {
      const empty = await mkdtemp(join(tmpdir(), 'lifeboat-h14import-empty-'));
      try {
        expect(await t.driver.catalog(t.target({ BASE_PATH: join(empty, 'none') }))).toEqual([]);
      } finally {
        await rm(empty, { recursive: true, force: true });
      }
    });
  });
}
