/**
 * The web console's files (web/, built by scripts/build-console.ts) as the local gateway serves
 * them: `/` and `/index.html` give index.html, `/assets/...` the built assets; no other path, no
 * token needed (static files only: the data comes from the API, which checks the token). A path
 * is decoded, resolved and must stay inside the folder, so `..`, encoded variants of it and
 * symlinks leading out never reach a file outside. The Content-Security-Policy allows only this origin: nothing is fetched
 * from elsewhere at run time.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

/** Only this origin; Cloudscape sets inline styles and inlines its fonts and icons as data: URLs. */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; " +
  "form-action 'self'";

/** Whether a request path is one of the console's (the API has no route under these). */
export function isConsolePath(path: string): boolean {
  return path === '/' || path === '/index.html' || path.startsWith('/assets/');
}

/**
 * The file of `path` under `root`, or undefined when it is outside `root`, malformed or absent.
 * `path` is the URL's pathname, still percent-encoded.
 */
export async function consoleFile(root: string, path: string): Promise<string | undefined> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(path === '/' ? '/index.html' : path);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return undefined;
  const base = resolve(root);
  const file = resolve(base, `.${decoded}`);
  if (!file.startsWith(base + sep)) return undefined;
  try {
    // A symlink inside the folder must not lead out of it: the check again on real paths.
    const [realBase, realFile] = await Promise.all([realpath(base), realpath(file)]);
    if (!realFile.startsWith(realBase + sep)) return undefined;
    return (await stat(realFile)).isFile() ? file : undefined;
  } catch {
    return undefined;
  }
}

/** Answer a GET or HEAD of a console path from `root`: the file, or 404. */
export async function serveConsole(
  root: string,
  method: string,
  path: string,
  res: ServerResponse,
): Promise<void> {
  const file = await consoleFile(root, path);
  if (!file) {
    const body = JSON.stringify({ error: 'NotFound', message: `no file ${path}` });
    res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  const body = await readFile(file);
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': body.length,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy': CONSOLE_CSP,
    // Built assets carry a content hash in their names; index.html must be re-read after a rebuild.
    'cache-control': path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  res.end(method === 'HEAD' ? undefined : body);
}
