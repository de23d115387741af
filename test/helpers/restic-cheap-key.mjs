// Test fixture, run by the `restic` shim of test/helpers/restic-shim.ts right after a successful
// `restic init`: rewrites the new repository's one key with cheap scrypt parameters (N=1024, r=8,
// p=1), so every later restic process opens it in milliseconds instead of most of a second (restic
// 0.14 calibrates its key derivation to about half a second at init, and a test suite starts
// hundreds of restic processes). The repository stays a real restic repository: same master key,
// same format (restic's design document, "Keys, Encryption and MAC"); only its password is cheaper
// to guess, which a test repository does not mind. Arguments: restic's own; it reads `-r`/`--repo`
// and the password from RESTIC_PASSWORD_FILE or RESTIC_PASSWORD, as restic did.
import { createCipheriv, createDecipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import { readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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

/** The folder of a `-r` value: a local path, or the path of `sftp:[user@]host:/path`. */
export function repositoryFolder(location) {
  const sftp = /^sftp:(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/]*):(.*)$/.exec(location);
  return sftp ? sftp[1] : location;
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

function main(args) {
  const at = args.findIndex((a) => a === '-r' || a === '--repo');
  const inline = args.find((a) => a.startsWith('--repo='));
  const location = at >= 0 ? args[at + 1] : inline?.slice('--repo='.length);
  if (!location) throw new Error('restic-cheap-key: no -r/--repo among the arguments');
  const file = process.env.RESTIC_PASSWORD_FILE;
  const password = file ? readFileSync(file, 'utf8').replace(/\r?\n$/, '') : process.env.RESTIC_PASSWORD;
  if (!password) throw new Error('restic-cheap-key: no RESTIC_PASSWORD_FILE nor RESTIC_PASSWORD');
  cheapenKey(repositoryFolder(location), password);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`restic-cheap-key: ${error.message}\n`);
    process.exit(1);
  }
}
