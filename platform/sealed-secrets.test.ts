import { describe, expect, it } from 'vitest';
import { generateHostKeyPair, parseHostPublicKey, sealSecrets, unsealSecrets } from './sealed-secrets.ts';

describe('sealed secrets', () => {
  const host = generateHostKeyPair();
  const values = { RESTIC_PASSWORD: 'correct horse battery staple' };

  it('opens with the host key and the same context, and holds no plaintext', () => {
    const sealed = sealSecrets(values, host.publicKey, 'ds/100');
    expect(sealed).not.toContain('horse');
    expect(Buffer.from(sealed.split('.')[3] ?? '', 'base64url').toString('latin1')).not.toContain('horse');
    expect(unsealSecrets(sealed, host.privateKey, 'ds/100')).toEqual(values);
  });

  it('refuses another host key, another context and a tampered body, naming no value', () => {
    const sealed = sealSecrets(values, host.publicKey, 'ds/100');
    const other = generateHostKeyPair();
    expect(() => unsealSecrets(sealed, other.privateKey, 'ds/100')).toThrow(/cannot be opened/);
    expect(() => unsealSecrets(sealed, host.privateKey, 'ds/101')).toThrow(/cannot be opened/);
    const parts = sealed.split('.');
    const body = Buffer.from(parts[3] ?? '', 'base64url');
    body[0] = (body[0] ?? 0) ^ 1;
    parts[3] = body.toString('base64url');
    expect(() => unsealSecrets(parts.join('.'), host.privateKey, 'ds/100')).toThrow(/cannot be opened/);
    expect(() => unsealSecrets('v2.a.b.c', host.privateKey, 'ds/100')).toThrow(/unknown format/);
  });

  it('accepts only X25519 public keys', () => {
    expect(() => parseHostPublicKey('not a key')).toThrow(/not a PEM public key/);
    expect(parseHostPublicKey(host.publicKey).asymmetricKeyType).toBe('x25519');
  });
});
