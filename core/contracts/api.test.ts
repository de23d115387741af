import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import {
  BackupConfigBody,
  BackupRequestBody,
  CreateDatastoreBody,
  CreateHostBody,
  ExecutionListQuery,
  ImageListQuery,
  InventoryBody,
  parseBody,
  RestoreRequestBody,
  UpdateDatastoreBody,
  VmListQuery,
} from './api.ts';

function rejection(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as Error).message;
  }
  throw new Error('expected a ValidationError');
}

describe('parseBody messages', () => {
  it('names a missing field as required', () => {
    expect(rejection(() => parseBody(BackupRequestBody, {}))).toBe('datastoreId: required');
    expect(rejection(() => parseBody(BackupRequestBody, undefined))).toBe('datastoreId: required');
  });

  it('names an unknown field', () => {
    expect(rejection(() => parseBody(BackupRequestBody, { datastoreId: 1, force: true }))).toBe(
      'force: unknown field',
    );
  });

  it('names a wrong type without zod boilerplate', () => {
    expect(rejection(() => parseBody(BackupRequestBody, { datastoreId: '100' }))).toBe(
      'datastoreId: expected number, received string',
    );
  });

  it('names nested paths', () => {
    const message = rejection(() =>
      parseBody(InventoryBody, {
        vms: [
          {
            domain: 'a',
            state: 'RUNNING',
            disks: [{ id: 0, target: 'vda', source: '/x' }],
            nics: [],
            template: '',
          },
        ],
      }),
    );
    expect(message).toMatch(/^vms\.0\.disks\.0\.format: /);
  });

  it('a body that is not an object is rejected', () => {
    expect(rejection(() => parseBody(BackupRequestBody, 'x'))).toMatch(/^body: /);
  });

  it('is a one-line message', () => {
    expect(rejection(() => parseBody(CreateDatastoreBody, { name: 'x' }))).not.toContain('\n');
  });
});

describe('CreateHostBody', () => {
  it('accepts a minimal host and every option', () => {
    expect(parseBody(CreateHostBody, { name: 'kvm-1' })).toEqual({ name: 'kvm-1' });
    expect(
      parseBody(CreateHostBody, {
        name: 'kvm-1.lan',
        cluster: 'c1',
        emulatorCpus: '0-1,4',
        maxBackupsHost: 3,
      }),
    ).toMatchObject({ emulatorCpus: '0-1,4', maxBackupsHost: 3 });
  });

  it('rejects bad names, CPU lists and limits', () => {
    expect(rejection(() => parseBody(CreateHostBody, { name: '-x' }))).toMatch(/^name: must be a host name/);
    expect(rejection(() => parseBody(CreateHostBody, { name: 'h', emulatorCpus: 'all' }))).toMatch(
      /^emulatorCpus: /,
    );
    expect(rejection(() => parseBody(CreateHostBody, { name: 'h', maxBackupsHost: 0 }))).toMatch(
      /^maxBackupsHost: /,
    );
  });
});

describe('InventoryBody', () => {
  const vm = {
    domain: 'web-1',
    state: 'RUNNING',
    disks: [
      { id: 0, target: 'vda', source: '/var/lib/libvirt/images/web-1.qcow2', format: 'qcow2', size: 10 },
    ],
    nics: [{ id: 0, mac: '52:54:00:00:00:01' }],
    template: '<domain/>',
  };

  it('fills disk defaults', () => {
    const body = parseBody(InventoryBody, { vms: [vm] });
    expect(body.vms[0]?.disks[0]).toMatchObject({ volatile: false, canIncrement: false });
  });

  it('rejects a duplicate domain and an unknown VM state', () => {
    expect(rejection(() => parseBody(InventoryBody, { vms: [vm, vm] }))).toBe(
      'vms: domain names must be unique',
    );
    expect(rejection(() => parseBody(InventoryBody, { vms: [{ ...vm, state: 'ON' }] }))).toMatch(
      /^vms\.0\.state: /,
    );
  });
});

describe('BackupConfigBody and BackupRequestBody', () => {
  it('defaults append to false and keeps numbers as text', () => {
    expect(parseBody(BackupConfigBody, { pairs: { KEEP_LAST: 3 } })).toEqual({
      pairs: { KEEP_LAST: '3' },
      append: false,
    });
  });

  it('rejects non-scalar values', () => {
    expect(rejection(() => parseBody(BackupConfigBody, { pairs: { KEEP_LAST: [3] } }))).toMatch(
      /^pairs\.KEEP_LAST: /,
    );
  });

  it('defaults reset to false and bounds priority', () => {
    expect(parseBody(BackupRequestBody, { datastoreId: 100 })).toEqual({ datastoreId: 100, reset: false });
    expect(rejection(() => parseBody(BackupRequestBody, { datastoreId: 100, priority: 100 }))).toMatch(
      /^priority: /,
    );
  });
});

describe('CreateDatastoreBody', () => {
  it('accepts a restic datastore', () => {
    expect(
      parseBody(CreateDatastoreBody, {
        name: 'ds',
        driver: 'restic',
        attributes: { RESTIC_PASSWORD: 'x', RESTIC_CONNECTIONS: 8 },
      }),
    ).toEqual({
      name: 'ds',
      driver: 'restic',
      attributes: { RESTIC_PASSWORD: 'x', RESTIC_CONNECTIONS: '8' },
    });
  });

  it('checks attributes against the driver', () => {
    expect(
      rejection(() => parseBody(CreateDatastoreBody, { name: 'ds', driver: 'restic', attributes: {} })),
    ).toBe('attributes.RESTIC_PASSWORD: required');
    expect(
      rejection(() =>
        parseBody(CreateDatastoreBody, {
          name: 'ds',
          driver: 'rsync',
          attributes: { RSYNC_HOST: 'h', X: '1' },
        }),
      ),
    ).toMatch(/^attributes\.X: unknown attribute for driver rsync/);
  });

  it('rejects an unknown driver', () => {
    expect(rejection(() => parseBody(CreateDatastoreBody, { name: 'ds', driver: 'tape' }))).toMatch(
      /^driver: /,
    );
  });
});

describe('UpdateDatastoreBody and RestoreRequestBody', () => {
  it('accepts a patch of attributes', () => {
    expect(parseBody(UpdateDatastoreBody, { attributes: { RESTIC_BWLIMIT: '' } })).toEqual({
      attributes: { RESTIC_BWLIMIT: '' },
    });
    expect(rejection(() => parseBody(UpdateDatastoreBody, { driver: 'rsync' }))).toBe(
      'driver: unknown field',
    );
  });

  it('fills restore defaults and checks the target folder', () => {
    expect(parseBody(RestoreRequestBody, {})).toEqual({ noIp: false, noNic: false });
    expect(parseBody(RestoreRequestBody, { targetDir: '/var/lib/restore', diskId: 1 })).toMatchObject({
      diskId: 1,
    });
    // Relative: under the host's first restore root.
    expect(parseBody(RestoreRequestBody, { targetDir: 'restore/web' })).toMatchObject({
      targetDir: 'restore/web',
    });
    expect(rejection(() => parseBody(RestoreRequestBody, { targetDir: '-x' }))).toBe(
      'targetDir: must not start with -',
    );
    expect(rejection(() => parseBody(RestoreRequestBody, { targetDir: 'a b' }))).toMatch(
      /^targetDir: must be a path of letters/,
    );
    expect(rejection(() => parseBody(RestoreRequestBody, { targetDir: '/a/../etc' }))).toBe(
      'targetDir: must not contain ..',
    );
    expect(rejection(() => parseBody(RestoreRequestBody, { noIP: true }))).toBe('noIP: unknown field');
  });
});

describe('list queries', () => {
  it('turn numeric text into ids', () => {
    expect(parseBody(ImageListQuery, { vmId: '3', datastoreId: '100' })).toEqual({
      vmId: 3,
      datastoreId: 100,
    });
    expect(parseBody(VmListQuery, {})).toEqual({});
    expect(parseBody(ExecutionListQuery, { state: 'RUNNING' })).toEqual({ state: 'RUNNING' });
  });

  it('reject bad ids and unknown parameters', () => {
    expect(rejection(() => parseBody(ImageListQuery, { vmId: 'x' }))).toBe(
      'vmId: must be a non-negative integer',
    );
    expect(rejection(() => parseBody(ImageListQuery, { vm: '3' }))).toBe('vm: unknown field');
  });
});
