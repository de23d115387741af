/**
 * Datastore secrets sealed to one host: the control plane encrypts a datastore's secret values
 * to the public key a runner registered at enrollment, so a task carries only ciphertext (the
 * execution history keeps every task input) and only that host's runner can open it.
 *
 * Scheme (v1): an ephemeral X25519 key agrees a shared secret with the host's X25519 key;
 * HKDF-SHA256 (salt = both public keys, info = `lifeboat-sealed-v1`) derives an AES-256-GCM key;
 * the additional authenticated data is the caller's `context` (`ds/<id>`), so a sealed value
 * cannot be replayed as another datastore's. Encoded `v1.<eph pub>.<iv>.<ciphertext+tag>`
 * (base64url). Errors never carry secret values.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { ValidationError } from '#core/errors.ts';

/** A host's key pair, PEM encoded (SPKI public, PKCS#8 private). */
export interface HostKeyPair {
  publicKey: string;
  privateKey: string;
}

const INFO = Buffer.from('lifeboat-sealed-v1');

/** The context a datastore's secrets are sealed for (Admit) and opened with (the runner). */
export function sealContext(datastoreId: number): string {
  return `ds/${datastoreId}`;
}

/** A new X25519 key pair for a host (made by the runner; the private key never leaves it). */
export function generateHostKeyPair(): HostKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return {
    publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** The X25519 public key of a PEM, or ValidationError (a host registering a bad key gets a 400). */
export function parseHostPublicKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new ValidationError('publicKey: not a PEM public key');
  }
  if (key.asymmetricKeyType !== 'x25519') throw new ValidationError('publicKey: must be an X25519 key');
  return key;
}

function rawPublic(key: KeyObject): Buffer {
  // The last 32 bytes of an X25519 SPKI DER are the raw key.
  return key.export({ type: 'spki', format: 'der' }).subarray(-32);
}

function deriveKey(shared: Buffer, ephemeral: KeyObject, recipient: KeyObject): Buffer {
  const salt = Buffer.concat([rawPublic(ephemeral), rawPublic(recipient)]);
  return Buffer.from(hkdfSync('sha256', shared, salt, INFO, 32));
}

/** Seals `values` to the host whose public key is `publicKeyPem`, bound to `context`. */
export function sealSecrets(values: Record<string, string>, publicKeyPem: string, context: string): string {
  const recipient = parseHostPublicKey(publicKeyPem);
  const ephemeral = generateKeyPairSync('x25519');
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient });
  const key = deriveKey(shared, ephemeral.publicKey, recipient);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(context));
  const body = Buffer.concat([
    cipher.update(JSON.stringify(values), 'utf8'),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return ['v1', rawPublic(ephemeral.publicKey), iv, body]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
    .join('.');
}

/**
 * Opens what {@link sealSecrets} made with this host's private key and the same `context`.
 * Throws ValidationError when it is malformed, sealed to another host or for another context.
 */
export function unsealSecrets(
  sealed: string,
  privateKeyPem: string,
  context: string,
): Record<string, string> {
  const parts = sealed.split('.');
  if (parts.length !== 4 || parts[0] !== 'v1') throw new ValidationError('sealed secret: unknown format');
  const [ephRaw, iv, body] = parts.slice(1).map((p) => Buffer.from(p, 'base64url')) as [
    Buffer,
    Buffer,
    Buffer,
  ];
  if (ephRaw.length !== 32 || iv.length !== 12 || body.length < 17) {
    throw new ValidationError('sealed secret: malformed');
  }
  const privateKey = createPrivateKey(privateKeyPem);
  const recipient = createPublicKey(privateKey);
  // Rebuild the ephemeral key's SPKI from its raw bytes (fixed 12-byte X25519 prefix).
  const ephemeral = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), ephRaw]),
    format: 'der',
    type: 'spki',
  });
  const key = deriveKey(diffieHellman({ privateKey, publicKey: ephemeral }), ephemeral, recipient);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(body.subarray(-16));
  let text: string;
  try {
    text = Buffer.concat([decipher.update(body.subarray(0, -16)), decipher.final()]).toString('utf8');
  } catch {
    throw new ValidationError(`sealed secret: cannot be opened with this host's key for ${context}`);
  }
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ValidationError('sealed secret: not an object');
  }
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
}
