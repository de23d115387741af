import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rsyncDriver } from '#drivers/datastore/rsync-driver.ts';
import { freePort, startSshd } from '../helpers/sshd.ts';
import { datastoreConformance } from './datastore.conformance.ts';

datastoreConformance('rsync over ssh', async () => {
  const base = await mkdtemp(join(tmpdir(), 'lifeboat-rsync-store-'));
  const sshd = await startSshd();
  process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
  const closed = await freePort();
  const target = (attributes = {}) => ({
    id: 200,
    attributes: {
      BASE_PATH: base,
      RSYNC_HOST: `${sshd.host}:${sshd.port}`,
      RSYNC_USER: 'root',
      ...attributes,
    },
    secrets: {},
  });
  return {
    driver: rsyncDriver,
    target,
    slowAttributes: { RSYNC_ARGS: '-aS --bwlimit=256' },
    unreachable: () => target({ RSYNC_HOST: `127.0.0.1:${closed}` }),
    streamsNbd: false,
    processMarkers: [base, sshd.configPath],
    async stop() {
      await sshd.stop();
      await rm(base, { recursive: true, force: true });
    },
  };
});
