/**
 * Thin wrappers over virsh and qemu-img for the disk drivers: argument arrays through
 * `drivers/exec.ts`, parsed output, and "domain does not exist" turned into null or
 * {@link DomainNotFound} so callers can tell it from a real failure.
 */
import { z } from 'zod';
import { ExecError, run } from '../exec.ts';
import { DomainNotFound } from './errors.ts';

/** The libvirt connection used unless a driver is given another one. */
export const DEFAULT_URI = 'qemu:///system';

export interface ToolOptions {
  uri?: string;
  signal?: AbortSignal;
}

/** Runs `virsh -c URI ...args` and returns its stdout. */
export async function virsh(args: readonly string[], options: ToolOptions = {}): Promise<string> {
  const { stdout } = await run(
    { file: 'virsh', args: ['-c', options.uri ?? DEFAULT_URI, ...args] },
    { signal: options.signal },
  );
  return stdout;
}

/** True when a virsh failure says the domain is not defined. */
export function isNoDomain(error: unknown): boolean {
  return (
    error instanceof ExecError &&
    /failed to get domain|domain not found|no domain with/i.test(error.stderrTail)
  );
}

/** libvirt's own words for a domain's state (`running`, `paused`, `shut off`, ...), or null when it does not exist. */
export async function domainState(domain: string, options: ToolOptions = {}): Promise<string | null> {
  try {
    return (await virsh(['domstate', domain], options)).trim();
  } catch (error) {
    if (isNoDomain(error)) return null;
    throw error;
  }
}

/** True for the libvirt states in which a QEMU process holds the disks open. */
export function isActiveState(state: string | null): boolean {
  return state !== null && state !== 'shut off' && state !== 'crashed';
}

/**
 * The domain XML: live (what QEMU runs now) or `inactive` (the persistent definition). Templates
 * never use `securityInfo`: they are shown by the API and stored in backups, and must not carry
 * VNC/SPICE passwords. Only XML that is redefined (and so must keep them) asks for it.
 */
export async function domainXml(
  domain: string,
  options: ToolOptions & { inactive?: boolean; securityInfo?: boolean } = {},
): Promise<string> {
  const flags = [
    ...(options.inactive ? ['--inactive'] : []),
    ...(options.securityInfo ? ['--security-info'] : []),
  ];
  try {
    return await virsh(['dumpxml', ...flags, domain], options);
  } catch (error) {
    if (isNoDomain(error)) throw new DomainNotFound(`Domain '${domain}' does not exist on this host`);
    throw error;
  }
}

/** True when the domain has a persistent definition (survives being destroyed). */
export async function isPersistent(domain: string, options: ToolOptions = {}): Promise<boolean> {
  const info = await virsh(['dominfo', domain], options);
  return /^Persistent:\s+yes$/m.test(info);
}

const ImageInfo = z.object({
  'virtual-size': z.number().int().nonnegative(),
  'actual-size': z.number().int().nonnegative().optional(),
  format: z.string(),
  'backing-filename': z.string().optional(),
  'full-backing-filename': z.string().optional(),
  'backing-filename-format': z.string().optional(),
});
/** What `qemu-img info --output=json` says about one image (the top of its chain). */
export type ImageInfo = z.infer<typeof ImageInfo>;

/**
 * `qemu-img info` of an image. `shared` adds `-U` (force share): only for metadata such as the
 * virtual size, of an image another process may hold open (a running QEMU; any disk, for the
 * inventory, which must never lock one); never read data that way (it can be stale).
 */
export async function imageInfo(
  path: string,
  options: { format?: string; shared?: boolean; signal?: AbortSignal } = {},
): Promise<ImageInfo> {
  const args = ['info', '--output=json', ...(options.shared ? ['-U'] : [])];
  if (options.format) args.push('-f', options.format);
  const { stdout } = await run({ file: 'qemu-img', args: [...args, path] }, { signal: options.signal });
  return ImageInfo.parse(JSON.parse(stdout));
}
