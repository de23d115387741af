import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatastoreTarget } from '#drivers/datastore/driver.ts';
import { resticDriver } from '#drivers/datastore/restic-driver.ts';
import { freePort, startSshd } from '../helpers/sshd.ts';
import { type ConformanceTarget, datastoreConformance } from './datastore.conformance.ts';

const PASSWORD = 'conformance-secret-Zq7!x';

async function resticTarget(sftp: boolean): Promise<ConformanceTarget> {
  const base = await mkdtemp(join(tmpdir(), 'lifeboat-restic-store-'));
  const sshd = sftp ? await startSshd() : undefined;
  if (sshd) process.env.LIFEBOAT_SSH_CONFIG = sshd.configPath;
  const server: Record<string, string> = sshd
    ? { RESTIC_SFTP_SERVER: `${sshd.host}:${sshd.port}`, RESTIC_SFTP_USER: 'root' }
    : {};
  const target = (attributes: Record<string, string> = {}, secret = PASSWORD): DatastoreTarget => ({
    id: 100,
    attributes: { BASE_PATH: base, ...server, ...attributes },
    secrets: { RESTIC_PASSWORD: secret },
  });
  const closed = await freePort();
  return {
    driver: resticDriver,
    target: (attributes) => target(attributes),
    slowAttributes: { RESTIC_BWLIMIT: '64' },
    wrongSecret: () => target({}, 'not-the-password'),
    secret: PASSWORD,
    unreachable: sshd ? () => target({ RESTIC_SFTP_SERVER: `127.0.0.1:${closed}` }) : undefined,
    streamsNbd: true,
    processMarkers: [base, ...(sshd ? [sshd.configPath] : [])],
    async stop() {
      await sshd?.stop();
      await rm(base, { recursive: true, force: true });
    },
  };
}

datastoreConformance('restic, local repository', () => resticTarget(false));
datastoreConformance('restic, sftp repository', () => resticTarget(true));
