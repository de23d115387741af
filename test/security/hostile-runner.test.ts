/**
 * The hostile battery through the runner's queue: forged and malformed messages, tokens no
 * execution waits for, replayed task ids, download and restore paths that leave the restore
 * root (traversal, absolute paths, symlinked components and final folders, existing files,
 * option-looking names), datastore attributes and domain names that tools would misread. Each
 * row goes through the real poller and executor; it must end as a failed task with a clear
 * one-line error (or be ignored), call no driver, and change nothing in the runner's folder
 * (the restore root, the sentinel tree `outside/` its symlinks point into, the state folder
 * but its journal and work folders). No secret shows in any answer, the journal or a log line.
 */
import { lstat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateHostKeyPair } from '#platform/sealed-secrets.ts';
import { backupTask, sealedDatastore } from '../../runner/testing/fakes.ts';
import { datastore, downloadTask, hostileRunner, PASSWORD, restoreTask } from './runner-harness.ts';

let r: Awaited<ReturnType<typeof hostileRunner>>;
beforeAll(async () => {
  r = await hostileRunner();
});
afterAll(async () => {
  await r?.close();
});

/** One hostile message and what must become of it. */
interface Row {
  name: string;
  /** The message body (a string is sent as it is). */
  body: () => unknown;
  /** ignored: no answer, nothing journalled; failed: one SendTaskFailure with `error`. */
  outcome: 'ignored' | 'failed';
  error?: string;
  cause?: RegExp;
  /** The message's token names no waiting execution (forged or replayed). */
  deadToken?: boolean;
}

let n = 1000;
const next = () => ++n;
const dl = (over: (id: number) => Record<string, unknown>) => () => {
  const id = next();
  return downloadTask(id, over(id));
};
const rs = (over: (id: number) => Record<string, unknown>) => () => {
  const id = next();
  return restoreTask(id, over(id));
};
const bk = (over: Record<string, unknown>) => () => {
  const id = next();
  return {
    ...backupTask({ taskId: `${id}/RunOnHost`, token: `token-${id}`, datastore: datastore() }),
    ...over,
  };
};
const invalid = (cause: RegExp): Pick<Row, 'outcome' | 'error' | 'cause'> => ({
  outcome: 'failed',
  error: 'InvalidTask',
  cause,
});
const inRoot = (...parts: string[]) => join(r.root, ...parts);

const ROWS: Row[] = [
  // --- forged and malformed messages ---------------------------------------------------------
  { name: 'not JSON', body: () => '{"v":1,"kind":', outcome: 'ignored' },
  { name: 'a JSON array', body: () => '[]', outcome: 'ignored' },
  { name: 'JSON null', body: () => 'null', outcome: 'ignored' },
  { name: 'an empty body', body: () => '', outcome: 'ignored' },
  { name: 'no token', body: dl(() => ({ token: undefined })), outcome: 'ignored' },
  { name: 'an empty token', body: dl(() => ({ token: '' })), outcome: 'ignored' },
  { name: 'protocol version 2', body: dl(() => ({ v: 2 })), ...invalid(/^task version 2 is not supported/) },
  {
    name: 'version as a string',
    body: dl(() => ({ v: '1' })),
    ...invalid(/^task version "1" is not supported/),
  },
  {
    name: 'an unknown kind',
    body: dl(() => ({ kind: 'shell', command: 'id' })),
    ...invalid(/^invalid task message: kind: /),
  },
  { name: 'no kind', body: dl(() => ({ kind: undefined })), ...invalid(/^invalid task message: kind: /) },
  {
    name: 'a negative heartbeat',
    body: dl(() => ({ heartbeatSeconds: -1 })),
    ...invalid(/heartbeatSeconds/),
  },
  {
    name: 'a 300 KB path (over any SQS message)',
    body: dl(() => ({ toPath: `exports/${'a'.repeat(300_000)}` })),
    ...invalid(/toPath/),
  },
  {
    name: 'a 1 MB task id, forged',
    body: dl((id) => ({ taskId: `${id}/${'x'.repeat(1_000_000)}` })),
    outcome: 'ignored',
    deadToken: true,
  },
  {
    name: 'extra fields, forged',
    body: dl(() => ({ exec: 'rm -rf /', confine: false, toPath: '/etc/cron.d/x' })),
    outcome: 'ignored',
    deadToken: true,
  },
  {
    name: 'a valid download no execution waits for',
    body: dl(() => ({})),
    outcome: 'ignored',
    deadToken: true,
  },
  {
    name: 'a valid restore no execution waits for',
    body: rs(() => ({})),
    outcome: 'ignored',
    deadToken: true,
  },
  {
    name: '"__proto__" smuggling confine: false',
    body: () => {
      const id = next();
      const task = downloadTask(id, { toPath: join(r.outside, 'x.raw') });
      return `${JSON.stringify(task).slice(0, -1)},"__proto__":{"confine":false}}`;
    },
    outcome: 'failed',
    error: 'Forbidden',
    cause: /is outside this host's restore roots/,
  },
  // --- downloads: where the file goes ----------------------------------------------------------
  { name: 'download to ../x', body: dl(() => ({ toPath: '../x' })), ...invalid(/toPath/) },
  {
    name: 'download to exports/../../x',
    body: dl(() => ({ toPath: 'exports/../../outside/x' })),
    ...invalid(/toPath/),
  },
  {
    name: 'download to -oProxyCommand=x',
    body: dl(() => ({ toPath: '-oProxyCommand=x' })),
    ...invalid(/toPath/),
  },
  {
    name: 'download to a path with a newline',
    body: dl(() => ({ toPath: 'exports/a\nb' })),
    ...invalid(/toPath/),
  },
  { name: 'download to a path with NUL', body: dl(() => ({ toPath: 'a\u0000b' })), ...invalid(/toPath/) },
  { name: 'download of a file named ../x', body: dl(() => ({ file: '../vm.xml' })), ...invalid(/file/) },
  {
    name: 'download, confined, to an absolute path outside the root',
    body: dl(() => ({ toPath: join(r.outside, 'x.raw') })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /is outside this host's restore roots/,
  },
  {
    name: 'download, confined, to /root/.ssh/authorized_keys',
    body: dl(() => ({ toPath: '/root/.ssh/authorized_keys' })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /is outside this host's restore roots/,
  },
  {
    name: 'download through a symlinked folder (relative)',
    body: dl(() => ({ toPath: 'link/x.raw' })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /link is a symbolic link/,
  },
  {
    name: 'download through a symlinked folder (absolute, in the root)',
    body: dl(() => ({ toPath: inRoot('sub', 'link', 'passwd2') })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /is a symbolic link/,
  },
  {
    name: 'download onto a symlink to a file outside',
    body: dl(() => ({ toPath: 'linkfile' })),
    outcome: 'failed',
    error: 'Conflict',
    cause: /already exists/,
  },
  {
    name: 'download onto an existing file',
    body: dl(() => ({ toPath: 'existing.raw' })),
    outcome: 'failed',
    error: 'Conflict',
    cause: /already exists/,
  },
  {
    name: 'download onto an existing folder',
    body: dl(() => ({ toPath: 'existing-dir' })),
    outcome: 'failed',
    error: 'Conflict',
    cause: /already exists/,
  },
  {
    name: 'download into a folder others can write',
    body: dl(() => ({ toPath: 'open/x.raw' })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /writable by other users/,
  },
  {
    name: 'download below a file',
    body: dl(() => ({ toPath: 'afile/x.raw' })),
    outcome: 'failed',
    error: 'Conflict',
    cause: /is not a folder/,
  },
  {
    name: 'download to a folder name (trailing /)',
    body: dl(() => ({ toPath: 'exports/' })),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /must name a file/,
  },
  {
    name: 'download by an admin through a symlink outside the root',
    body: dl(() => ({ toPath: join(r.root, 'link', 'x.raw'), confine: false })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /is a symbolic link/,
  },
  {
    name: 'download by an admin over an existing file outside the root',
    body: dl(() => ({ toPath: join(r.outside, 'secret.txt'), confine: false })),
    outcome: 'failed',
    error: 'Conflict',
    cause: /already exists/,
  },
  // --- restores: where the disks go, and the domain they define --------------------------------
  { name: 'restore to ../x', body: rs(() => ({ target: '../x' })), ...invalid(/target/) },
  {
    name: 'restore to /srv/../etc',
    body: rs(() => ({ target: '/srv/../etc', confine: false })),
    ...invalid(/target/),
  },
  { name: 'restore to -rf', body: rs(() => ({ target: '-rf' })), ...invalid(/target/) },
  { name: 'restore to a folder with a newline', body: rs(() => ({ target: 'a\nb' })), ...invalid(/target/) },
  {
    name: 'restore, confined, to a folder outside the root',
    body: rs(() => ({ target: r.outside })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /is outside this host's restore roots/,
  },
  {
    name: 'restore, confined, to /etc',
    body: rs(() => ({ target: '/etc' })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /is outside this host's restore roots/,
  },
  {
    name: 'restore into a symlinked final folder',
    body: rs(() => ({ target: 'dirlink' })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /dirlink is a symbolic link/,
  },
  {
    name: 'restore through a symlinked component',
    body: rs(() => ({ target: 'sub/link/deeper' })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /is a symbolic link/,
  },
  {
    name: 'restore over an existing disk file',
    body: rs(() => ({ target: 'taken' })),
    outcome: 'failed',
    error: 'Conflict',
    cause: /copy-disk-0\.qcow2 already exists/,
  },
  {
    name: 'restore into a file',
    body: rs(() => ({ target: 'afile' })),
    outcome: 'failed',
    error: 'Conflict',
    cause: /is not a folder/,
  },
  {
    name: 'restore into a folder others can write',
    body: rs(() => ({ target: 'open/x' })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /writable by other users/,
  },
  {
    name: 'restore by an admin through a symlink',
    body: rs(() => ({ target: join(r.root, 'link', 'x'), confine: false })),
    outcome: 'failed',
    error: 'Forbidden',
    cause: /is a symbolic link/,
  },
  { name: 'restore named --help', body: rs(() => ({ name: '--help' })), ...invalid(/name/) },
  { name: 'restore named -c qemu:///x', body: rs(() => ({ name: '-c qemu:///x' })), ...invalid(/name/) },
  { name: 'restore named 42 (a domain id)', body: rs(() => ({ name: '42' })), ...invalid(/name/) },
  {
    name: 'restore named like a UUID',
    body: rs(() => ({ name: '2b8e5f1a-4c3d-4e5f-8a9b-0c1d2e3f4a5b' })),
    ...invalid(/name/),
  },
  { name: 'restore named ../x', body: rs(() => ({ name: '../x' })), ...invalid(/name/) },
  {
    name: 'restore of a stored file named ../x',
    body: rs(() => ({ disks: [{ id: 0, file: '../../etc/cron.d/x' }] })),
    ...invalid(/disks\.0\.file/),
  },
  {
    name: 'restore of a stored file named -x',
    body: rs(() => ({ disks: [{ id: 0, file: '--output=/etc/x' }] })),
    ...invalid(/disks\.0\.file/),
  },
  {
    name: 'restore of a chain point with a file named ../x',
    body: rs(() => ({ chain: [{ backupId: 'snap-2', disks: [{ id: 0, file: '../x.qcow2' }] }] })),
    ...invalid(/chain\.0\.disks\.0\.file/),
  },
  {
    name: 'restore of a backup id ../..',
    body: rs(() => ({ backupId: '../../other-vm' })),
    ...invalid(/backupId/),
  },
  { name: 'download of a backup id -x', body: dl(() => ({ backupId: '--help' })), ...invalid(/backupId/) },
  { name: 'download of a file named --help', body: dl(() => ({ file: '--help' })), ...invalid(/file/) },
  {
    name: 'restore in place of a domain named --help',
    body: rs(() => ({
      inPlace: {
        domain: '--help',
        disks: [{ id: 0, source: '/var/lib/libvirt/images/x.qcow2', format: 'qcow2' }],
        start: false,
      },
    })),
    ...invalid(/inPlace\.domain/),
  },
  // --- datastore attributes and domain names that tools would misread ---------------------------
  {
    name: 'BASE_PATH with a newline',
    body: dl(() => ({ datastore: datastore({ attributes: { BASE_PATH: '/srv\n/x' } }) })),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /^datastore 100: attributes\.BASE_PATH: /,
  },
  {
    name: 'BASE_PATH -oProxyCommand',
    body: dl(() => ({ datastore: datastore({ attributes: { BASE_PATH: '-oProxyCommand=sh' } }) })),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /attributes\.BASE_PATH/,
  },
  {
    name: 'BASE_PATH with ..',
    body: rs(() => ({ datastore: datastore({ attributes: { BASE_PATH: '/srv/../etc' } }) })),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /attributes\.BASE_PATH/,
  },
  {
    name: 'RESTIC_SFTP_SERVER -oProxyCommand',
    body: bk({ datastore: datastore({ attributes: { RESTIC_SFTP_SERVER: '-oProxyCommand=sh' } }) }),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /attributes\.RESTIC_SFTP_SERVER/,
  },
  {
    name: 'RESTIC_SFTP_USER -lroot',
    body: dl(() => ({ datastore: datastore({ attributes: { RESTIC_SFTP_USER: '-lroot' } }) })),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /attributes\.RESTIC_SFTP_USER/,
  },
  {
    name: 'RESTIC_REPOSITORY (not an attribute)',
    body: dl(() => ({ datastore: datastore({ attributes: { RESTIC_REPOSITORY: 'sftp:evil:/x' } }) })),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /attributes\.RESTIC_REPOSITORY/,
  },
  {
    name: 'RSYNC_ARGS --rsh=',
    body: dl(() => ({
      datastore: datastore({ driver: 'rsync', attributes: { RSYNC_HOST: 'b', RSYNC_ARGS: '--rsh=sh' } }),
    })),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /attributes\.RSYNC_ARGS/,
  },
  {
    name: 'RSYNC_ARGS -e sh',
    body: bk({
      datastore: datastore({ driver: 'rsync', attributes: { RSYNC_HOST: 'b', RSYNC_ARGS: '-e sh' } }),
    }),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /attributes\.RSYNC_ARGS/,
  },
  {
    name: 'RSYNC_HOST -oProxyCommand',
    body: dl(() => ({
      datastore: datastore({ driver: 'rsync', attributes: { RSYNC_HOST: '-oProxyCommand=sh' } }),
    })),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /attributes\.RSYNC_HOST/,
  },
  {
    name: 'secrets sealed to another host',
    body: dl(() => ({
      datastore: sealedDatastore({ RESTIC_PASSWORD: PASSWORD }, {}, generateHostKeyPair()),
    })),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /cannot be opened with this host's key/,
  },
  {
    name: 'secrets sealed for another datastore',
    body: dl(() => ({ datastore: { ...datastore(), id: 101 } })),
    outcome: 'failed',
    error: 'ValidationError',
    cause: /^datastore 101: the task's secrets cannot be opened/,
  },
  {
    name: 'a plaintext secret where the sealed one goes',
    body: dl(() => ({ datastore: { ...datastore(), sealedSecrets: PASSWORD } })),
    ...invalid(/sealedSecrets/),
  },
  {
    name: 'backup of a domain named --help',
    body: bk({ vm: { id: 3, domain: '--help', state: 'RUNNING' } }),
    ...invalid(/vm\.domain/),
  },
  {
    name: 'backup of a domain named -c qemu:///x',
    body: bk({ vm: { id: 3, domain: '-c qemu:///x', state: 'RUNNING' } }),
    ...invalid(/vm\.domain/),
  },
  {
    name: 'backup of a domain named 1 (an id)',
    body: bk({ vm: { id: 3, domain: '1', state: 'RUNNING' } }),
    ...invalid(/vm\.domain/),
  },
  {
    name: 'backup of a domain named with a newline',
    body: bk({ vm: { id: 3, domain: 'a\nb', state: 'RUNNING' } }),
    ...invalid(/vm\.domain/),
  },
];

/** The token and task id of a message body, when it has them. */
function readable(body: unknown): { token?: string; taskId?: string } {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return {};
    }
  }
  return typeof value === 'object' && value !== null ? (value as { token?: string; taskId?: string }) : {};
}

describe('hostile task messages', () => {
  it('are many, each named once', () => {
    expect(ROWS.length).toBeGreaterThanOrEqual(60);
    expect(new Set(ROWS.map((row) => row.name)).size).toBe(ROWS.length);
  });

  it.each(ROWS.map((row) => [row.name, row] as const))('%s', async (_name, row) => {
    const body = row.body();
    const task = readable(body);
    if (row.deadToken && task.token) r.tokens.gone.add(task.token);
    const before = await r.listing();
    const calls = r.calls.length;
    const { answers, deleted } = await r.deliver(body);

    expect(deleted).toBe(true);
    expect(r.calls.slice(calls)).toEqual([]);
    expect(await r.listing()).toEqual(before);
    if (row.outcome === 'ignored') {
      expect(answers).toEqual([]);
      if (task.taskId) expect(await r.journalText()).not.toContain(task.taskId.slice(0, 40));
    } else {
      expect(answers).toHaveLength(1);
      const [answer] = answers;
      expect(answer).toMatchObject({ call: 'failure', token: task.token });
      if (answer?.call !== 'failure') return;
      if (row.error) expect(answer.error).toBe(row.error);
      if (row.cause) expect(answer.cause).toMatch(row.cause);
      // One clear line, no secret.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is checked
      expect(answer.cause).not.toMatch(/[\u0000-\u001f\u007f]/);
      expect(answer.cause).not.toContain(PASSWORD);
    }
  });
});

describe('replayed task ids', () => {
  it('a task delivered again is answered with its recorded outcome, never run twice', async () => {
    const first = downloadTask(1, { toPath: 'replay/one.raw' });
    const done = await r.deliver(first);
    expect(done.answers).toEqual([
      { call: 'success', token: 'token-1', output: { path: join(r.root, 'replay', 'one.raw'), size: 9 } },
    ]);
    expect((await lstat(join(r.root, 'replay', 'one.raw'))).mode & 0o777).toBe(0o600);
    const calls = r.calls.length;
    const before = await r.listing();
    // The same id with another token (the state machine handed it out again) and another path.
    const again = await r.deliver({ ...first, token: 'token-1b', toPath: '/etc/cron.d/evil' });
    expect(again.answers).toEqual([
      { call: 'success', token: 'token-1b', output: { path: join(r.root, 'replay', 'one.raw'), size: 9 } },
    ]);
    // Replayed as it was, with a token nobody waits for: nothing runs, nothing fails loudly.
    r.tokens.gone.add('token-1c');
    const stale = await r.deliver({ ...first, token: 'token-1c' });
    expect(stale.deleted).toBe(true);
    expect(r.calls.length).toBe(calls);
    expect(await r.listing()).toEqual(before);
  });

  it('a failed task delivered again is answered with its failure, never retried into the outside', async () => {
    const first = downloadTask(2, { toPath: join(r.outside, 'x.raw') });
    expect((await r.deliver(first)).answers).toMatchObject([{ call: 'failure', error: 'Forbidden' }]);
    const before = await r.listing();
    const again = await r.deliver({ ...first, token: 'token-2b', confine: false });
    expect(again.answers).toMatchObject([{ call: 'failure', token: 'token-2b', error: 'Forbidden' }]);
    expect(await r.listing()).toEqual(before);
  });
});

describe('a restore root that is itself a symlink', () => {
  it('is resolved once: writes land in its real folder, the traps inside still refused', async () => {
    const linked = await hostileRunner({ rootThroughLink: true });
    try {
      const before = await linked.listing();
      const relative = await linked.deliver(downloadTask(1, { toPath: 'exports/a.raw' }));
      const byLinkName = await linked.deliver(
        downloadTask(2, { toPath: join(linked.configured, 'exports', 'b.raw') }),
      );
      const byRealName = await linked.deliver(
        downloadTask(3, { toPath: join(linked.root, 'exports', 'c.raw') }),
      );
      for (const [done, name] of [
        [relative, 'a.raw'],
        [byLinkName, 'b.raw'],
        [byRealName, 'c.raw'],
      ] as const) {
        expect(done.answers).toMatchObject([
          { call: 'success', output: { path: join(linked.root, 'exports', name) } },
        ]);
      }
      // Only the new folder and its three files changed, all in the real root.
      const after = await linked.listing();
      const added = after.filter((line) => !before.includes(line)).map((line) => line.split(' ')[0]);
      const removed = before.filter((line) => !after.includes(line)).map((line) => line.split(' ')[0]);
      expect(added.sort()).toEqual([
        'restores-real',
        'restores-real/exports',
        'restores-real/exports/a.raw',
        'restores-real/exports/b.raw',
        'restores-real/exports/c.raw',
      ]);
      expect(removed).toEqual(['restores-real']);
      // Inside it, a symlink is still a symlink.
      const trap = await linked.deliver(
        downloadTask(4, { toPath: join(linked.configured, 'link', 'x.raw') }),
      );
      expect(trap.answers).toMatchObject([
        { call: 'failure', error: 'Forbidden', cause: expect.stringMatching(/is a symbolic link/) },
      ]);
      expect(await readFile(join(linked.outside, 'secret.txt'), 'utf8')).toBe('keep me');
    } finally {
      await linked.close();
    }
  });
});

describe('what the runner kept', () => {
  it('holds no secret: not in answers, the journal or a log line', async () => {
    const everything = [...r.lines, await r.journalText(), JSON.stringify(r.tokens.calls)].join('\n');
    expect(everything).not.toContain(PASSWORD);
    expect(r.lines.some((line) => line.includes('invalid task message'))).toBe(true);
    expect(r.lines.some((line) => line.includes('no execution waits for its token'))).toBe(true);
  });
});
