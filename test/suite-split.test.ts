/**
 * The split of vitest.config.ts holds: no file of the parallel `unit` project starts a shared
 * daemon (DynamoDB Local, fauxqs, sshd, libvirt and its VMs, a second libvirtd or runner, a
 * local stack), itself or through a helper it imports. Such a file would flake beside another
 * one doing the same; it belongs in INTEGRATION, which runs one file at a time.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, matchesGlob, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { INTEGRATION } from '../vitest.config.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SKIPPED = new Set(['node_modules', 'cdk.out', '.lifeboat', '.git']);

/** Calls that start something the machine has one of (test/helpers/*, local/*). */
const STARTS =
  /\b(startDynamoDbLocal|startDynamoDb|startLocalSqs|startSqs|startSshd|createTestVm|ensureLibvirt|startSecondLibvirtd|startSecondRunner|startControlPlane|localUp|startCeph)\(|\bvirsh\(|file: 'virsh'/;

function testFiles(dir = ROOT): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (SKIPPED.has(entry.name)) return [];
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(path);
    return entry.name.endsWith('.test.ts') ? [relative(ROOT, path)] : [];
  });
}

/** Files under test/ or a `testing` folder are helpers tests share; the rest is code under test. */
const isHelper = (file: string) => file.startsWith('test/') || file.split('/').includes('testing');

const isIntegration = (file: string) => INTEGRATION.some((glob) => matchesGlob(file, glob));

/** The first start found in `file` or in the relative imports it reaches, as `where: call`. */
function firstStart(file: string, seen = new Set<string>()): string | undefined {
  // Also skips a path that is only text in a test (an import written into a scratch folder).
  if (seen.has(file) || !existsSync(join(ROOT, file))) return undefined;
  seen.add(file);
  const text = readFileSync(join(ROOT, file), 'utf8');
  const found = STARTS.exec(text);
  if (found) return `${file}: ${found[0]}`;
  for (const [, spec] of text.matchAll(/from '(\.\.?\/[^']+\.ts)'/g)) {
    const target = relative(ROOT, resolve(ROOT, dirname(file), spec as string));
    // Test helpers only: a source module beside its test defines such calls, the test decides.
    if (!isHelper(target)) continue;
    const hit = firstStart(target, seen);
    if (hit) return hit;
  }
  return undefined;
}

describe('the unit/integration split', () => {
  const files = testFiles();

  it('puts no file that starts a shared daemon in the parallel unit project', () => {
    // This file names the calls it looks for: it is the one file not checked.
    const checked = files.filter((f) => !isIntegration(f) && f !== 'test/suite-split.test.ts');
    const starting = checked.flatMap((f) => firstStart(f) ?? []);
    expect(starting).toEqual([]);
  });

  it('lists no integration pattern that matches nothing (a moved or deleted suite)', () => {
    expect(INTEGRATION.filter((glob) => !files.some((f) => matchesGlob(f, glob)))).toEqual([]);
  });

  it('still sees integration files that start daemons (the check above is not blind)', () => {
    expect(firstStart('test/e2e/incremental.test.ts')).toBeDefined();
    expect(firstStart('test/drivers/restic.test.ts')).toMatch(/startSshd\(/);
  });
});
