/**
 * The newcomer's first start: `lifeboat local up` on a fresh home makes a demo VM and a local
 * restic datastore, says so on stderr with the exact next command, and that command backs the
 * demo VM up. The home's config says `demo: 'always'` because this hypervisor may run other
 * tests' VMs (the "host has no VMs" rule is unit-tested in local/demo.test.ts).
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Datastore, Execution, Image, Vm } from '#core/model.ts';
import { DEMO_DIR, DEMO_DOMAIN } from '#local/demo.ts';
import { virsh } from '../helpers/libvirt.ts';
import { removeHome, type Stack, startStack } from './harness.ts';

let stack: Stack;
let existedBefore: boolean;

beforeAll(async () => {
  existedBefore = await virsh('dominfo', DEMO_DOMAIN).then(
    () => true,
    () => false,
  );
  stack = await startStack({ viaCli: true, config: { demo: 'always' } });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  await removeHome(stack);
  // Only what this test made: a demo VM the machine already had stays.
  if (existedBefore === false) {
    await virsh('destroy', DEMO_DOMAIN).catch(() => {});
    await virsh('undefine', DEMO_DOMAIN, '--checkpoints-metadata').catch(() => {});
    await rm(DEMO_DIR, { recursive: true, force: true });
  }
}, 120_000);

describe('the demo of a first start', () => {
  it('makes a running demo VM and a restic datastore, and prints the next command', async () => {
    const stderr = stack.up?.stderr ?? '';
    expect(stack.up?.stdout.trim()).toBe(stack.endpoint);
    const vms = await stack.json<Vm[]>(['vm', 'list']);
    const vm = vms.find((v) => v.domain === DEMO_DOMAIN);
    expect(vm?.state).toBe('RUNNING');
    expect(vm?.disks).toHaveLength(1);
    expect(vm?.disks[0]?.size).toBe(256 * 1024 * 1024);
    expect(vm?.disks[0]?.source).toMatch(new RegExp(`^${DEMO_DIR}/`));
    const datastores = await stack.json<Datastore[]>(['datastore', 'list']);
    expect(datastores.map((d) => d.name)).toEqual(['demo-restic']);
    const ds = datastores[0] as Datastore;
    expect(ds.driver).toBe('restic');
    expect(ds.attributes.BASE_PATH).toBe(join(stack.home, 'demo-backups'));
    expect(ds.attributes.RESTIC_PASSWORD).toBeUndefined();
    expect(stderr).toContain(`VM ${vm?.id} "${DEMO_DOMAIN}"`);
    expect(stderr).toContain(`npx lifeboat vm backup ${vm?.id} -d ${ds.id} --wait`);
  });

  it('the printed command backs the demo VM up', async () => {
    const command = /npx lifeboat (vm backup .*--wait)/.exec(stack.up?.stderr ?? '')?.[1];
    expect(command).toBeDefined();
    const out = await stack.cli([...(command as string).split(' '), '--json']);
    expect(out.code).toBe(0);
    const execution = JSON.parse(out.stdout) as Execution;
    expect(execution.state).toBe('SUCCEEDED');
    const image = await stack.json<Image>(['image', 'show', String(execution.imageId)]);
    expect(image.state).toBe('READY');
    // The demo disk's data (16 MiB written) is in the image; the empty rest is not stored.
    expect(image.disks[0]?.virtualSize).toBe(256 * 1024 * 1024);
    expect(image.size).toBeGreaterThan(0);
    expect(await readdir(join(stack.home, 'demo-backups'))).not.toEqual([]);
    // The random password exists only in the secret store, never in any output or log.
    const secrets = await readdir(join(stack.home, 'secrets'), { recursive: true });
    const stored = await Promise.all(
      secrets.filter((f) => f.endsWith('.json')).map((f) => readFile(join(stack.home, 'secrets', f), 'utf8')),
    );
    const password = stored.map((s) => JSON.parse(s).RESTIC_PASSWORD).find(Boolean) as string;
    expect(password).toMatch(/^[A-Za-z0-9_-]{32}$/);
    for (const text of [stack.up?.stderr, stack.up?.stdout, out.stdout, out.stderr, await stack.logs()]) {
      expect(text).not.toContain(password);
    }
  });
});
