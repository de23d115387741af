// Test fixture, run by the `restic` shim of test/helpers/restic-shim.ts for `restic init`: creates
// the repository itself, in restic's format 2 (restic's design document: the layout, "Keys,
// Encryption and MAC", the config file), with its one key under cheap scrypt parameters (N=1024,
// r=8, p=1). restic 0.14's own init spends about 3 s of CPU calibrating its key derivation (and
// every later process half a second deriving it again), and a test suite creates hundreds of
// repositories. What it writes is what restic's init writes: a random master key and repository
// id, a random irreducible chunker polynomial of degree 53, data/00..ff; restic then reads and
// writes it as any other. Where it cannot do as restic would (a repository version other than 2,
// a password command, a remote that is not on this machine, a folder already holding something
// else), it runs the real `restic init` and rewrites the key it made (`cheapenKey`).
// Arguments: the real restic's path, then restic's own arguments.
import { spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';

const CHEAP = { N: 1024, r: 8, p: 1 };

/** Little-endian bytes to a BigInt. */
function le(bytes) {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]);
  return n;
}

/** Poly1305 (RFC 8439 2.5) of `msg` under the one-time key r||s. */
export function poly1305(msg, key) {
  const r = le(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const s = le(key.subarray(16, 32));
  const p = (1n << 130n) - 5n;
  let acc = 0n;
  for (let i = 0; i < msg.length; i += 16) {
    const block = msg.subarray(i, i + 16);
    acc = ((acc + le(block) + (1n << BigInt(8 * block.length))) * r) % p;
  }
  acc = (acc + s) & ((1n << 128n) - 1n);
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) out[i] = Number((acc >> BigInt(8 * i)) & 0xffn);
  return out;
}

/** restic's Poly1305-AES: the one-time key is r (masked by Poly1305 itself) || AES-128_k(nonce). */
function mac(ciphertext, nonce, macK, macR) {
  const aes = createCipheriv('aes-128-ecb', macK, null).setAutoPadding(false);
  const s = Buffer.concat([aes.update(nonce), aes.final()]);
  return poly1305(ciphertext, Buffer.concat([macR, s]));
}

/** restic's KDF: scrypt to 64 bytes, the AES-256 key then the MAC key k||r. */
function derive(password, salt, { N, r, p }) {
  const key = scryptSync(password, salt, 64, { N, r, p, maxmem: 512 * 1024 * 1024 });
  return { enc: key.subarray(0, 32), macK: key.subarray(32, 48), macR: key.subarray(48, 64) };
}

/** Decrypts IV || ciphertext || MAC; undefined when the MAC does not match. */
export function open(blob, keys) {
  const nonce = blob.subarray(0, 16);
  const ciphertext = blob.subarray(16, blob.length - 16);
  if (!mac(ciphertext, nonce, keys.macK, keys.macR).equals(blob.subarray(blob.length - 16))) return undefined;
  const aes = createDecipheriv('aes-256-ctr', keys.enc, nonce);
  return Buffer.concat([aes.update(ciphertext), aes.final()]);
}

/** Encrypts to IV || ciphertext || MAC. */
export function seal(plaintext, keys) {
  const nonce = randomBytes(16);
  const aes = createCipheriv('aes-256-ctr', keys.enc, nonce);
  const ciphertext = Buffer.concat([aes.update(plaintext), aes.final()]);
  return Buffer.concat([nonce, ciphertext, mac(ciphertext, nonce, keys.macK, keys.macR)]);
}

/** `sftp:[user@]host:/path` as [whole, host, path]; null for any other location. */
function parseSftp(location) {
  return /^sftp:(?:[^@/]*@)?(\[[^\]]*\]|[^:/]*):(.*)$/.exec(location);
}

/** The folder of a `-r` value: a local path, or the path of `sftp:[user@]host:/path`. */
export function repositoryFolder(location) {
  return parseSftp(location)?.[2] ?? location;
}

/** Rewrites the one key of the repository in `folder` with {@link CHEAP} parameters. */
export function cheapenKey(folder, password) {
  const dir = join(folder, 'keys');
  const names = readdirSync(dir);
  if (names.length !== 1) throw new Error(`${dir} holds ${names.length} keys, not the one init made`);
  const path = join(dir, names[0]);
  const key = JSON.parse(readFileSync(path, 'utf8'));
  const passwords = [password, password.trim()];
  let master;
  for (const candidate of passwords) {
    master = open(Buffer.from(key.data, 'base64'), derive(candidate, Buffer.from(key.salt, 'base64'), key));
    if (master) {
      password = candidate;
      break;
    }
  }
  if (!master) throw new Error(`the password does not open ${path}`);
  const salt = randomBytes(64);
  const data = seal(master, derive(password, salt, CHEAP));
  const text = JSON.stringify({
    created: new Date().toISOString(),
    username: key.username,
    hostname: key.hostname,
    kdf: 'scrypt',
    ...CHEAP,
    salt: salt.toString('base64'),
    data: data.toString('base64'),
  });
  // A file's name in a restic repository is the sha256 of its content.
  writeFileSync(join(dir, createHash('sha256').update(text).digest('hex')), text, { mode: 0o400 });
  unlinkSync(path);
}

/** Carry-less product of two polynomials over GF(2) (bit i: the coefficient of x^i). */
function clmul(a, b) {
  let out = 0n;
  for (let i = 0n; b >> i; i++) if ((b >> i) & 1n) out ^= a << i;
  return out;
}

function degree(f) {
  return f === 0n ? -1 : f.toString(2).length - 1;
}

/** `a` mod `f` over GF(2). */
function polyMod(a, f) {
  const df = degree(f);
  for (let d = degree(a); d >= df; d = degree(a)) a ^= f << BigInt(d - df);
  return a;
}

function polyGcd(a, b) {
  while (b !== 0n) [a, b] = [b, polyMod(a, b)];
  return a;
}

/** Ben-Or's test, as restic's chunker makes it: gcd(f, x^(2^i) - x mod f) = 1 for i <= deg/2. */
export function irreducible(f) {
  let power = 2n; // x
  for (let i = 1; i <= degree(f) / 2; i++) {
    power = polyMod(clmul(power, power), f);
    if (polyGcd(f, power ^ 2n) !== 1n) return false;
  }
  return true;
}

/** A random irreducible polynomial of degree 53, drawn as restic's chunker draws one. */
export function randomPolynomial() {
  for (;;) {
    const f = (randomBytes(8).readBigUInt64LE() & ((1n << 54n) - 1n)) | (1n << 53n) | 1n;
    if (irreducible(f)) return f;
  }
}

/** A new master key (AES-256 and Poly1305-AES k, r: r clamped as restic clamps it). */
function masterKey() {
  const r = randomBytes(16);
  for (const i of [3, 7, 11, 15]) r[i] &= 15;
  for (const i of [4, 8, 12]) r[i] &= 252;
  return { encrypt: randomBytes(32), mac: { k: randomBytes(16), r } };
}

/** A key file's text: `master` under `password` with {@link CHEAP} parameters. */
function keyFile(master, password) {
  const json = JSON.stringify({
    mac: { k: master.mac.k.toString('base64'), r: master.mac.r.toString('base64') },
    encrypt: master.encrypt.toString('base64'),
  });
  const salt = randomBytes(64);
  return JSON.stringify({
    created: new Date().toISOString(),
    username: userInfo().username,
    hostname: hostname(),
    kdf: 'scrypt',
    ...CHEAP,
    salt: salt.toString('base64'),
    data: seal(Buffer.from(json), derive(password, salt, CHEAP)).toString('base64'),
  });
}

/** Raised when the folder already holds a repository: restic's own words. */
class AlreadyExists extends Error {}

/**
 * Creates a format-2 repository in `folder` (made with its parents, as restic's init makes them),
 * built beside it and renamed into place so that of two racing inits one wins and the other
 * fails as restic's would. Answers its id; undefined when the folder holds something else
 * (restic's own init then decides).
 */
export function createRepository(folder, password) {
  if (existsSync(join(folder, 'config'))) throw new AlreadyExists('config file already exists');
  if (existsSync(folder) && readdirSync(folder).length > 0) return undefined;
  mkdirSync(dirname(folder), { recursive: true, mode: 0o700 });
  const temp = `${folder}.lifeboat-init-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    mkdirSync(temp, { mode: 0o700 });
    for (const sub of ['data', 'index', 'keys', 'locks', 'snapshots'])
      mkdirSync(join(temp, sub), { mode: 0o700 });
    for (let i = 0; i < 256; i++)
      mkdirSync(join(temp, 'data', i.toString(16).padStart(2, '0')), { mode: 0o700 });
    const master = masterKey();
    const key = keyFile(master, password);
    // A file's name in a restic repository is the sha256 of its content.
    writeFileSync(join(temp, 'keys', createHash('sha256').update(key).digest('hex')), key, { mode: 0o400 });
    const id = randomBytes(32).toString('hex');
    const config = JSON.stringify({ version: 2, id, chunker_polynomial: randomPolynomial().toString(16) });
    const keys = { enc: master.encrypt, macK: master.mac.k, macR: master.mac.r };
    writeFileSync(join(temp, 'config'), seal(Buffer.from(config), keys), { mode: 0o400 });
    try {
      // Replaces an empty folder; fails on one another init filled meanwhile.
      renameSync(temp, folder);
    } catch (error) {
      if (error.code === 'ENOTEMPTY' || error.code === 'EEXIST')
        throw new AlreadyExists('config file already exists');
      throw error;
    }
    return id;
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

/** The words of restic's `sftp.command` (joinCommand's quoting: bare words, or in double quotes). */
export function splitCommand(text) {
  return [...text.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

const LOOPBACK = /^(?:127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/;

/** What init is asked for, or why the real restic must do it. */
export function parseInit(args, env) {
  const value = (name) => {
    const at = args.indexOf(name);
    if (at >= 0) return args[at + 1];
    return args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  };
  const location = value('-r') ?? value('--repo');
  if (!location) return { fallback: 'no -r/--repo' };
  const version = value('--repository-version');
  if (version !== undefined && version !== '2' && version !== 'latest')
    return { fallback: `version ${version}` };
  if (value('--password-command') !== undefined || env.RESTIC_PASSWORD_COMMAND)
    return { fallback: 'password command' };
  const password = passwordOf(value('--password-file') ?? env.RESTIC_PASSWORD_FILE, env);
  if (!password) return { fallback: 'no password' };
  const sftp = parseSftp(location);
  if (!sftp)
    return location.includes(':')
      ? { fallback: 'a remote backend', remote: true }
      : { location, folder: location, password };
  const command = args
    .flatMap((a, i) =>
      args[i - 1] === '-o' && a.startsWith('sftp.command=') ? [a.slice('sftp.command='.length)] : [],
    )
    .at(-1);
  const host = command
    ? splitCommand(command).find((_word, i, all) => i > 0 && all[i + 1] === '-s')
    : sftp[1];
  if (!host || !LOOPBACK.test(host)) return { fallback: 'a server on another machine', remote: true };
  return { location, folder: sftp[2], password, ssh: command ? splitCommand(command) : undefined };
}

function fail(message, status = 1) {
  process.stderr.write(message.endsWith('\n') ? message : `${message}\n`);
  process.exit(status);
}

function main(realRestic, args) {
  const init = parseInit(args, process.env);
  if (init.ssh) {
    // The server must answer as it would answer restic: an unreachable one fails the init.
    const [file, ...rest] = init.ssh;
    const probe = spawnSync(file, rest, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (probe.status !== 0)
      fail(`${probe.stderr}Fatal: create repository at ${init.location} failed: ssh exited ${probe.status}`);
  }
  if (!init.fallback) {
    try {
      const id = createRepository(init.folder, init.password);
      if (id) {
        process.stdout.write(`created restic repository ${id.slice(0, 10)} at ${init.location}\n`);
        return;
      }
    } catch (error) {
      if (error instanceof AlreadyExists)
        fail(`Fatal: create repository at ${init.location} failed: ${error.message}`);
      throw error;
    }
  }
  const real = spawnSync(realRestic, args, { stdio: 'inherit' });
  // A repository on another machine keeps restic's own key: its folder is not here to rewrite.
  if (real.status !== 0 || init.remote) process.exit(real.status ?? 1);
  const folder = init.folder ?? repositoryFolder(init.location ?? '');
  const password = init.password ?? readPassword(process.env);
  cheapenKey(folder, password);
}

/** The password restic would read: the file's first line, or RESTIC_PASSWORD. */
function passwordOf(file, env) {
  return file ? readFileSync(file, 'utf8').replace(/\r?\n$/, '') : env.RESTIC_PASSWORD;
}

function readPassword(env) {
  const password = passwordOf(env.RESTIC_PASSWORD_FILE, env);
  if (!password) throw new Error('restic-cheap-key: no RESTIC_PASSWORD_FILE nor RESTIC_PASSWORD');
  return password;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  try {
    main(process.argv[2], process.argv.slice(3));
  } catch (error) {
    process.stderr.write(`restic-cheap-key: ${error.message}\n`);
    process.exit(1);
  }
}
