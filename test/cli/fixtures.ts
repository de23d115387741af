/** Objects as the API returns them (core/model.ts shapes), for the CLI's tests. */
import type { Datastore, Execution, Host, Image, Vm } from '#core/model.ts';

const OWNERSHIP = { owner: 'admin', group: 'admin', permissions: 'um-u--u--' } as const;
const CREATED = '2026-11-26T10:00:00.000Z';

export const HOST: Host = {
  id: 1,
  name: 'kvm-1',
  cluster: 'default',
  state: 'MONITORED',
  createdAt: CREATED,
};

export const VM: Vm = {
  ...OWNERSHIP,
  id: 3,
  name: 'web-1',
  hostId: 1,
  domain: 'web-1',
  state: 'RUNNING',
  disks: [
    {
      id: 0,
      target: 'vda',
      source: '/var/lib/libvirt/images/web-1.qcow2',
      format: 'qcow2',
      size: 10737418240,
      volatile: false,
      canIncrement: true,
    },
  ],
  nics: [{ id: 0, network: 'default', ip: '192.168.122.10' }],
  template: '<domain/>',
  backups: { BACKUP_CONFIG: { KEEP_LAST: '3', MODE: 'INCREMENT' }, BACKUP_IDS: [12] },
  createdAt: CREATED,
};

/** A datastore as a buggy API might return it: a secret value among the attributes. */
export const LEAKY_DATASTORE: Datastore = {
  ...OWNERSHIP,
  id: 100,
  name: 'ds1',
  type: 'BACKUP',
  driver: 'restic',
  attributes: { BASE_PATH: '/srv/backup', RESTIC_PASSWORD: 'hunter2-secret', SSH_PRIVATE_KEY: 'BEGIN-KEY' },
  secretAttributes: ['RESTIC_PASSWORD'],
  createdAt: CREATED,
};

export const DATASTORE: Datastore = {
  ...LEAKY_DATASTORE,
  attributes: { BASE_PATH: '/srv/backup' },
};

export const IMAGE: Image = {
  ...OWNERSHIP,
  id: 12,
  name: 'web-1-backup',
  type: 'BACKUP',
  datastoreId: 100,
  vmId: 3,
  state: 'READY',
  mode: 'INCREMENT',
  source: '9f2c1ab7',
  size: 43122688,
  disks: [{ id: 0, size: 43122688, virtualSize: 10737418240, format: 'raw', file: 'disk.0.0' }],
  template: '<domain/>',
  increments: [{ id: 0, type: 'FULL', source: '9f2c1ab7', size: 43122688, date: CREATED }],
  createdAt: CREATED,
};

/** An execution in `state`, with `overrides`. */
export function execution(state: Execution['state'], overrides: Partial<Execution> = {}): Execution {
  return {
    id: '17',
    kind: 'backup',
    state,
    phase: state === 'QUEUED' ? 'queued' : 'export',
    vmId: 3,
    datastoreId: 100,
    bytesDone: 0,
    bytesTotal: 0,
    requestedBy: 'admin',
    priority: 0,
    params: {},
    createdAt: CREATED,
    ...overrides,
  };
}
