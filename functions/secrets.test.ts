import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalFileStore, SecretsManagerStore, secretStore } from './secrets.ts';

describe('LocalFileStore', () => {
  let home: string;
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'lifeboat-secrets-'));
  });
  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('keeps values in a 0600 file inside a 0700 folder and reads them back', async () => {
    const folder = join(home, 'secrets');
    const store = new LocalFileStore(folder);
    await store.put('ds/100', { RESTIC_PASSWORD: 's3cret' });
    expect(await store.get('ds/100')).toEqual({ RESTIC_PASSWORD: 's3cret' });
    expect((await stat(folder)).mode & 0o777).toBe(0o700);
    const [file] = await readdir(folder);
    expect(file).toBe('ds_100.json');
    expect((await stat(join(folder, file as string))).mode & 0o777).toBe(0o600);
  });

  it('replaces values on put and forgets them on delete', async () => {
    const store = new LocalFileStore(home);
    await store.put('ds/1', { A: '1', B: '2' });
    await store.put('ds/1', { A: '3' });
    expect(await store.get('ds/1')).toEqual({ A: '3' });
    await store.delete('ds/1');
    await store.delete('ds/1');
    await expect(store.get('ds/1')).rejects.toThrow('secret ds/1 does not exist');
  });

  it('refuses references that could escape the folder', async () => {
    const store = new LocalFileStore(home);
    await expect(store.put('../etc/passwd', { A: 'x' })).rejects.toThrow('invalid secret reference');
    await expect(store.get('/abs')).rejects.toThrow('invalid secret reference');
  });

  it('never leaves the secret in a temporary file', async () => {
    const store = new LocalFileStore(home);
    await store.put('ds/2', { RESTIC_PASSWORD: 'pw' });
    expect(await readdir(home)).toEqual(['ds_2.json']);
    expect(await readFile(join(home, 'ds_2.json'), 'utf8')).toContain('pw');
  });
});

describe('secretStore', () => {
  it('chooses the store from LIFEBOAT_SECRET_STORE', () => {
    expect(secretStore('secretsmanager')).toBeInstanceOf(SecretsManagerStore);
    const local = secretStore('local:/tmp/x');
    expect(local).toBeInstanceOf(LocalFileStore);
    expect((local as LocalFileStore).folder).toBe('/tmp/x');
    expect(() => secretStore('vault')).toThrow('LIFEBOAT_SECRET_STORE');
    expect(() => secretStore('local:')).toThrow('LIFEBOAT_SECRET_STORE');
  });
});
