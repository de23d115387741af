/**
 * libvirt on a machine without systemd (local mode and the tests): starts virtlogd and
 * libvirtd by hand when they are not running and gives /dev/kvm the owner udev would give it.
 * On a real host the init system runs libvirt; the runner itself never starts daemons.
 */
import { chmod, chown, readFile, stat } from 'node:fs/promises';
import { run } from '#drivers/exec.ts';

export const LIBVIRT_URI = 'qemu:///system';

async function libvirtReady(): Promise<boolean> {
  return run({ file: 'virsh', args: ['-c', LIBVIRT_URI, 'list', '--name'] }, { timeoutMs: 10_000 }).then(
    () => true,
    () => false,
  );
}

async function alive(pidFile: string): Promise<boolean> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  return (
    pid > 1 &&
    (await stat(`/proc/${pid}`).then(
      () => true,
      () => false,
    ))
  );
}

/**
 * Starts virtlogd and libvirtd (daemonized, `-d`) unless already running, and waits until
 * `virsh` answers. Idempotent; a daemon started twice refuses through its pid file lock.
 */
export async function ensureLibvirt(): Promise<void> {
  await shareKvm();
  if (await libvirtReady()) return;
  for (const [daemon, pidFile] of [
    ['/usr/sbin/virtlogd', '/run/virtlogd.pid'],
    ['/usr/sbin/libvirtd', '/run/libvirtd.pid'],
  ] as const) {
    if (!(await alive(pidFile)))
      await run({ file: daemon, args: ['-d'] }, { timeoutMs: 30_000 }).catch(() => {});
  }
  for (let i = 0; i < 100; i++) {
    if (await libvirtReady()) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('libvirtd did not become ready within 20 s (see /var/log/libvirt/libvirtd.log)');
}

/**
 * Gives /dev/kvm the owner and mode udev gives it on Debian (root:kvm 0660), since no udev runs
 * here. Without it QEMU (libvirt-qemu, group kvm) cannot use KVM, and libvirt then finds its
 * capability cache stale on every lookup and re-probes QEMU: each `virsh define` takes 40 s.
 */
async function shareKvm(): Promise<void> {
  const info = await stat('/dev/kvm').catch(() => undefined);
  const kvmGid = Number(/^kvm:[^:]*:(\d+):/m.exec(await readFile('/etc/group', 'utf8'))?.[1] ?? Number.NaN);
  if (!info || Number.isNaN(kvmGid) || (info.gid === kvmGid && (info.mode & 0o060) === 0o060)) return;
  await chown('/dev/kvm', 0, kvmGid).catch(() => {});
  await chmod('/dev/kvm', 0o660).catch(() => {});
}
