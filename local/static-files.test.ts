/** The console's static files: content types, index at `/`, nothing outside web/. */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleFile, isConsolePath, serveConsole } from './static-files.ts';

let dir: string;
let web: string;
let server: Server;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-static-'));
  web = join(dir, 'web');
  await mkdir(join(web, 'assets'), { recursive: true });
  await writeFile(join(web, 'index.html'), '<!doctype html><title>x</title>');
  await writeFile(join(web, 'assets', 'app.js'), 'console.log(1)');
  await writeFile(join(web, 'assets', 'app.css'), 'body{}');
  await writeFile(join(dir, 'secret.txt'), 'outside');
  // Symlinks inside web/ that lead out of it: to a file, and to a folder.
  await symlink(join(dir, 'secret.txt'), join(web, 'assets', 'leak.txt'));
  await symlink(dir, join(web, 'assets', 'up'));
  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    void serveConsole(web, req.method ?? 'GET', path, res);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((ok) => server.close(ok));
  await rm(dir, { recursive: true, force: true });
});

/** A raw GET: the path goes out exactly as written (fetch would normalize `..`). */
function rawGet(path: string): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((ok, fail) => {
    const req = request(`${base}/`, { path }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => ok({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('console static files', () => {
  it('serves index.html at / and assets with their content types and a same-origin CSP', async () => {
    const index = await fetch(`${base}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(await index.text()).toContain('<title>x</title>');
    const js = await fetch(`${base}/assets/app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await js.text()).toBe('console.log(1)');
    expect((await fetch(`${base}/assets/app.css`)).headers.get('content-type')).toBe(
      'text/css; charset=utf-8',
    );
  });

  it('never serves a file outside web/, however the path is written', async () => {
    for (const path of [
      '/assets/../../secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/assets/..%5c..%5csecret.txt',
      '/assets/app.js%00.html',
      '/assets/%E0%A4%A',
      '/assets/missing.js',
      '/assets/',
      '/assets/leak.txt',
      '/assets/up/secret.txt',
    ]) {
      const res = await rawGet(path);
      expect(res.status, path).toBe(404);
      expect(res.body).not.toContain('outside');
    }
    expect(await consoleFile(web, '/assets/../../secret.txt')).toBeUndefined();
    expect(await consoleFile(web, '/assets/app.js')).toBe(join(web, 'assets', 'app.js'));
  });

  it('claims only /, /index.html and /assets/: API paths belong to the API', () => {
    expect(isConsolePath('/')).toBe(true);
    expect(isConsolePath('/index.html')).toBe(true);
    expect(isConsolePath('/assets/x.js')).toBe(true);
    for (const p of ['/vms', '/openapi.json', '/health', '/assetsx', '/executions/1/cancel'])
      expect(isConsolePath(p)).toBe(false);
  });
});
