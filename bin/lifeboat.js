#!/usr/bin/env node
/**
 * Launcher of the `lifeboat` command: runs `cli/main.ts` under Node 22 with tsx (no build step).
 *
 * It works from any cwd, as `npx lifeboat` in the project root and through a symlink on PATH:
 * the project root comes from the real path of this file. The CLI needs Node >= 22; on an older
 * Node (the system one on Debian 12 is 20) it re-executes the Node 22 the `node` npm package put
 * in `<root>/node_modules/.bin/node`, keeping argv and stdio, and exits with the child's code.
 * Plain JavaScript on purpose: this file must parse on whatever Node runs it first.
 */
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const self = realpathSync(fileURLToPath(import.meta.url));
const root = dirname(dirname(self));
const main = join(root, 'cli', 'main.ts');
const major = Number(process.versions.node.split('.')[0]);

if (major >= 22) {
  // Same process: register tsx's ESM hooks, then load the CLI (it reads process.argv itself).
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(main).href);
} else {
  const node = join(root, 'node_modules', '.bin', 'node');
  if (!existsSync(node)) {
    process.stderr.write(
      `lifeboat: Node ${process.versions.node} is too old (needs >= 22) and ${node} is missing: run npm install\n`,
    );
    process.exit(1);
  }
  // tsx's loader by absolute URL, so `--import` does not depend on the cwd.
  const loader = pathToFileURL(createRequire(self).resolve('tsx')).href;
  const child = spawn(node, ['--import', loader, main, ...process.argv.slice(2)], { stdio: 'inherit' });
  // Ctrl-C reaches the child too (same process group): let it decide, then mirror its end.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => {});
  child.on('error', (error) => {
    process.stderr.write(`lifeboat: cannot start ${node}: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    }
    process.exit(code ?? 1);
  });
}
