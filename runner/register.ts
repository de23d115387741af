/**
 * The runner's place in the control plane: connect as its host (with the credential saved in the
 * state folder, or by registering with a one-time enrollment token; in AWS, signed with its IAM
 * Roles Anywhere session instead), and report the libvirt domains it sees at start and then
 * periodically.
 */
import type { InventoryVm } from '#core/contracts/api.ts';
import type { Host } from '#core/model.ts';
import { ApiAnswerError, type ApiConnector, type RunnerApi } from './api-client.ts';
import { NotEnrolled } from './errors.ts';
import { ensureHostKey, identityPath, readIdentity, saveIdentity } from './identity.ts';
import type { Logger } from './log.ts';

/** The host as the runner needs it: id and queue. */
export interface RegisteredHost {
  id: number;
  name: string;
  queueUrl: string;
}

/** A connected runner: its host, and the API as that host. */
export interface HostConnection {
  host: RegisteredHost;
  api: RunnerApi;
  /** Where `api` reaches this host: `/hosts/<id>` with a bearer credential, `/runner/hosts/<id>` signed. */
  hostPath: string;
}

function registered(host: Host): RegisteredHost {
  if (!host.queueUrl) throw new Error(`host ${host.id} (${host.name}) has no task queue`);
  return { id: host.id, name: host.name, queueUrl: host.queueUrl };
}

/** How to get a credential, for the messages that say one is missing. */
const ENROLL_HINT = (name: string) =>
  `an admin runs \`lifeboat host enroll ${name}\` and the runner starts with that token in ` +
  'LIFEBOAT_ENROLL_TOKEN or in a file named by --enroll-token-file';

/**
 * Connects as this host. With a saved identity, its credential reads the host (for its queue);
 * without one, or when the API refuses it and an enrollment token is at hand, the runner
 * registers (`POST /hosts/register` with its name and public key, the token as bearer) and saves
 * the identity it gets. NotEnrolled when it has neither a usable identity nor a token.
 */
export async function connectHost(
  connect: ApiConnector,
  opts: {
    name: string;
    stateDir: string;
    enrollToken: () => Promise<string | undefined>;
    runnerVersion: string;
    log: Logger;
  },
): Promise<HostConnection> {
  const identity = await readIdentity(opts.stateDir);
  const token = await opts.enrollToken();
  if (identity) {
    const api = connect(identity.credential);
    try {
      const hostPath = `/hosts/${identity.hostId}`;
      return { host: registered(await api.get<Host>(hostPath)), api, hostPath };
    } catch (error) {
      if (!(error instanceof ApiAnswerError && error.httpStatus === 401)) throw error;
      if (!token) {
        throw new NotEnrolled(
          `the API refuses this host's credential (${identityPath(opts.stateDir)}): enroll it again: ` +
            ENROLL_HINT(identity.name),
          { cause: error },
        );
      }
      opts.log('warn', 'host credential refused: registering again with the enrollment token', {
        hostId: identity.hostId,
      });
    }
  }
  if (!token) {
    throw new NotEnrolled(
      `no host identity in ${identityPath(opts.stateDir)} and no enrollment token: ${ENROLL_HINT(opts.name)}`,
    );
  }
  const publicKey = await ensureHostKey(opts.stateDir);
  const answer = await connect(token).post<{ host: Host; credential: string }>('/hosts/register', {
    name: opts.name,
    publicKey,
    runnerVersion: opts.runnerVersion,
  });
  await saveIdentity(opts.stateDir, {
    hostId: answer.host.id,
    name: answer.host.name,
    credential: answer.credential,
  });
  opts.log('info', 'host registered with its enrollment token', { hostId: answer.host.id });
  return {
    host: registered(answer.host),
    api: connect(answer.credential),
    hostPath: `/hosts/${answer.host.id}`,
  };
}

/**
 * Connects as host `hostId` with a client signed by the host's IAM session (runner/signed-api.ts),
 * whose certificate's CN is that id: no enrollment token nor saved credential. It stores its
 * public key on the host (`PUT /runner/hosts/<id>/key`, made in host-key.pem when missing), which
 * answers the host. An admin creates the host beforehand (`POST /hosts`); until then, NotEnrolled.
 */
export async function connectHostSigned(
  api: RunnerApi,
  opts: { hostId: number; stateDir: string; runnerVersion: string; log: Logger },
): Promise<HostConnection> {
  const hostPath = `/runner/hosts/${opts.hostId}`;
  const publicKey = await ensureHostKey(opts.stateDir);
  let host: Host;
  try {
    host = await api.put<Host>(`${hostPath}/key`, { publicKey, runnerVersion: opts.runnerVersion });
  } catch (error) {
    if (!(error instanceof ApiAnswerError && error.httpStatus === 404)) throw error;
    throw new NotEnrolled(
      `host ${opts.hostId} does not exist: an admin creates it (POST /hosts {name}) before ` +
        `its certificate (CN=<host id>) is issued, and LIFEBOAT_HOST_ID names that id`,
      { cause: error },
    );
  }
  opts.log('info', 'host key registered with the IAM session', { hostId: host.id });
  return { host: registered(host), api, hostPath };
}

/** Reads every domain of this host (`drivers/disk/inventory.ts` in production). */
export type InventoryReader = () => Promise<InventoryVm[]>;

/** Sends one inventory report to `<hostPath>/inventory`; answers how many VMs it named. */
export async function reportInventory(
  api: RunnerApi,
  hostPath: string,
  read: InventoryReader,
  runnerVersion: string,
): Promise<number> {
  const vms = await read();
  await api.put(`${hostPath}/inventory`, { vms, runnerVersion });
  return vms.length;
}

/**
 * Calls `report` now and then every `intervalSeconds` until `signal` aborts: the safety net
 * under the reports libvirt's events trigger (runner/domain-events.ts). `report` never rejects:
 * a failed report (libvirt down, API unreachable) is logged and retried at the next tick, and
 * the runner keeps working on its queue meanwhile.
 */
export function startInventoryLoop(opts: {
  report: () => Promise<void>;
  intervalSeconds: number;
  signal: AbortSignal;
}): Promise<void> {
  return (async () => {
    while (!opts.signal.aborted) {
      await opts.report();
      await sleep(opts.intervalSeconds * 1000, opts.signal);
    }
  })();
}

/** Resolves after `ms` or as soon as `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
