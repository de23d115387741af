/**
 * Defining a restored VM on this host: the cleaned template (core/template.ts), rebuilt from the
 * allow-list of core/template-allow.ts once more right before use, gets this host's
 * CPU placement (EMULATOR_CPUS, or a pin policy re-applied here; core/template-host.ts) and is
 * defined with `virsh define`, never over an existing domain of the same name, and started only
 * when asked. The XML file passed to virsh is 0600 and removed at once (a template can hold a
 * VNC password).
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkDomainName, domainNameProblem } from '#core/domain-name.ts';
import { Conflict } from '#core/errors.ts';
import { allowTemplate } from '#core/template-allow.ts';
import { templateForHost } from '#core/template-host.ts';
import { domainState, type ToolOptions, virsh } from '#drivers/disk/tools.ts';

/** Number of CPUs libvirt reports for this host (`virsh nodeinfo`). */
export async function hostCpuCount(options: ToolOptions = {}): Promise<number> {
  const out = await virsh(['nodeinfo'], options);
  const cpus = Number(/^CPU\(s\):\s+(\d+)/m.exec(out)?.[1]);
  if (!Number.isInteger(cpus) || cpus < 1) throw new Error(`virsh nodeinfo gave no CPU count: ${out.trim()}`);
  return cpus;
}

/** Throws Conflict when a domain named `name` exists on this host. */
export async function assertNoDomain(name: string, options: ToolOptions = {}): Promise<void> {
  checkDomainName(name, 'restore name');
  if ((await domainState(name, options)) !== null) {
    throw new Conflict(`a domain named "${name}" already exists on this host: restore with another name`);
  }
}

/** What {@link defineDomain} did. */
export interface DefinedDomain {
  name: string;
  started: boolean;
  /** What the operator should know (PCI devices left out, ...). */
  notes: string[];
}

/**
 * Defines `xml` (a cleaned template with its disks pointed at the restored files) as domain
 * `name`, pinned for this host, and starts it when `start`. If the start fails the domain is
 * undefined again, so a failed restore leaves no half-made VM.
 */
export async function defineDomain(
  xml: string,
  opts: {
    name: string;
    start: boolean;
    emulatorCpus: string | null;
    workDir: string;
    /** The restored disk files: the only host files the domain may name. */
    diskFiles: readonly string[];
  },
  options: ToolOptions = {},
): Promise<DefinedDomain> {
  await assertNoDomain(opts.name, options);
  // Checked again where it is used: only the allow-listed devices and the restored files.
  const allowed = allowTemplate(xml, opts.diskFiles);
  const placed = templateForHost(allowed.xml, {
    emulatorCpus: opts.emulatorCpus ?? undefined,
    hostCpus: await hostCpuCount(options),
  });
  const file = join(opts.workDir, 'define.xml');
  await writeFile(file, placed.xml, { mode: 0o600 });
  try {
    await virsh(['define', file], options);
  } finally {
    await rm(file, { force: true });
  }
  const notes = [...allowed.notes, ...placed.notes];
  if (!opts.start) return { name: opts.name, started: false, notes };
  try {
    await virsh(['start', opts.name], options);
  } catch (error) {
    await undefineDomain(opts.name, options);
    throw error;
  }
  return { name: opts.name, started: true, notes };
}

/** Stops (if running) and undefines a domain this restore defined; quiet when already gone. */
export async function undefineDomain(name: string, options: ToolOptions = {}): Promise<void> {
  // Never for a name virsh would read as another domain's id or UUID (`virsh destroy 3`).
  if (domainNameProblem(name) !== undefined) return;
  await virsh(['destroy', name], options).catch(() => {});
  await virsh(['undefine', name, '--checkpoints-metadata', '--snapshots-metadata'], options).catch(() => {});
}
