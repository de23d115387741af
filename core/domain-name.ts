/**
 * Which libvirt domain names a task may hand to virsh. virsh looks a `<domain>` argument up as
 * an id first, then as a UUID, then as a name, and reads anything starting with `-` as an
 * option: a name of digits or shaped like a UUID could act on ANOTHER domain (`virsh destroy 3`
 * stops the domain whose id is 3), and one starting with `-` is not a name at all. libvirt itself
 * refuses `/` and newlines in names. Pure: no I/O.
 */
import { z } from 'zod';
import { ValidationError } from './errors.ts';

const MAX_LENGTH = 255;

/** Why `name` is not a domain name virsh reads unambiguously, or undefined when it is one. */
export function domainNameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > MAX_LENGTH) return `must be 1 to ${MAX_LENGTH} characters`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\x00-\x1f\x7f/]/.test(name)) return 'must not contain / or control characters';
  if (name.startsWith('-')) return 'must not start with - (virsh would read an option)';
  if (/^\s|\s$/.test(name)) return 'must not start or end with a space';
  if (/^\d+$/.test(name)) return 'must not be all digits (virsh would read a domain id)';
  if (/^[0-9a-f]{32}$/i.test(name.replace(/[-\s]/g, '')))
    return 'must not look like a UUID (virsh would read one)';
  return undefined;
}

/** Throws ValidationError `<what> "<name>": <problem>` unless `name` is a safe domain name. */
export function checkDomainName(name: string, what = 'domain'): string {
  const problem = domainNameProblem(name);
  if (problem) throw new ValidationError(`${what} ${JSON.stringify(name)}: ${problem}`);
  return name;
}

/** zod schema of a libvirt domain name as tasks carry it (see {@link domainNameProblem}). */
export const DomainName = z.string().superRefine((name, ctx) => {
  const problem = domainNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
