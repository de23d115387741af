/** The console build runs Vite only when the sources changed, and replaces web/ whole. */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConsole } from './build-console.ts';

let dir: string;
let consoleDir: string;
let webDir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-console-build-'));
  consoleDir = join(dir, 'console');
  webDir = join(dir, 'web');
  await mkdir(join(consoleDir, 'src'), { recursive: true });
  await writeFile(
    join(consoleDir, 'index.html'),
    '<!doctype html><html><body><div id="root"></div><script type="module" src="/src/main.ts"></script></body></html>',
  );
  await writeFile(join(consoleDir, 'src', 'main.ts'), 'document.body.dataset.v = "one";\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The text of the built script. */
async function builtScript(): Promise<string> {
  const [js] = (await readdir(join(webDir, 'assets'))).filter((f) => f.endsWith('.js'));
  return readFile(join(webDir, 'assets', js ?? ''), 'utf8');
}

describe('console build', () => {
  it('builds once, skips while the sources are unchanged, rebuilds when one changes', async () => {
    expect((await buildConsole({ consoleDir, webDir })).built).toBe(true);
    expect(await readFile(join(webDir, 'index.html'), 'utf8')).toMatch(/src="\/assets\/[^"]+\.js"/);
    expect(await builtScript()).toContain('one');
    expect((await buildConsole({ consoleDir, webDir })).built).toBe(false);

    await writeFile(join(consoleDir, 'src', 'main.ts'), 'document.body.dataset.v = "two";\n');
    expect((await buildConsole({ consoleDir, webDir })).built).toBe(true);
    expect(await builtScript()).toContain('two');
    // No leftover temporary folder beside web/.
    expect((await readdir(dir)).sort()).toEqual(['console', 'web']);
  });

  it('two builds at once both succeed and leave one whole web/', async () => {
    await writeFile(join(consoleDir, 'src', 'main.ts'), 'document.body.dataset.v = "three";\n');
    const results = await Promise.all([
      buildConsole({ consoleDir, webDir }),
      buildConsole({ consoleDir, webDir }),
    ]);
    expect(results.some((r) => r.built)).toBe(true);
    expect(await builtScript()).toContain('three');
    expect((await readdir(dir)).sort()).toEqual(['console', 'web']);
  });
});
