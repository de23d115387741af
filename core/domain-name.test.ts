import { describe, expect, it } from 'vitest';
import { RestoreRequestBody } from './contracts/api.ts';
import { TaskVm } from './contracts/tasks.ts';
import { checkDomainName, DomainName, domainNameProblem } from './domain-name.ts';

describe('domain names handed to virsh', () => {
  it('accepts the names libvirt VMs usually have', () => {
    for (const name of ['web-1', 'lifeboat-demo', 'db.prod_2', 'VM 7', 'é-vm', '3-9', 'a'.repeat(255)]) {
      expect(domainNameProblem(name), name).toBeUndefined();
    }
  });

  it('refuses what virsh would read as an option, an id or a UUID, and what libvirt refuses', () => {
    expect(domainNameProblem('-c')).toMatch(/option/);
    expect(domainNameProblem('--help')).toMatch(/option/);
    expect(domainNameProblem('3')).toMatch(/domain id/);
    expect(domainNameProblem('2024')).toMatch(/domain id/);
    expect(domainNameProblem('7e4aaa11-a07f-423f-bbc1-b900ca09b7cc')).toMatch(/UUID/);
    expect(domainNameProblem('7E4AAA11A07F423FBBC1B900CA09B7CC')).toMatch(/UUID/);
    expect(domainNameProblem('a/b')).toMatch(/control/);
    expect(domainNameProblem('web\n-1')).toMatch(/control/);
    expect(domainNameProblem(' web')).toMatch(/space/);
    expect(domainNameProblem('')).toMatch(/1 to 255/);
    expect(domainNameProblem('a'.repeat(256))).toMatch(/1 to 255/);
    expect(() => checkDomainName('5', 'restore name')).toThrow('restore name "5": must not be all digits');
    expect(DomainName.safeParse('-x').success).toBe(false);
    expect(DomainName.parse('web-1')).toBe('web-1');
  });

  it('task messages and restore requests carry only such names', () => {
    expect(TaskVm.safeParse({ id: 1, domain: 'web-1', state: 'RUNNING' }).success).toBe(true);
    for (const domain of ['-c', '3', '7e4aaa11-a07f-423f-bbc1-b900ca09b7cc', 'a\nb']) {
      expect(TaskVm.safeParse({ id: 1, domain, state: 'RUNNING' }).success, domain).toBe(false);
    }
    expect(RestoreRequestBody.safeParse({ name: '12' }).success).toBe(false);
    expect(RestoreRequestBody.safeParse({ name: 'web-1-copy' }).success).toBe(true);
  });
});
