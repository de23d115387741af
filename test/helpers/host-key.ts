/**
 * The key of the hosts tests register through `POST /hosts` on a runner's behalf: datastore
 * secrets are sealed to it, so a test can open what Admit put in a task, as that host would.
 */
import { generateHostKeyPair, type HostKeyPair } from '#platform/sealed-secrets.ts';

/** One X25519 key pair per test process. */
export const TEST_HOST_KEY: HostKeyPair = generateHostKeyPair();

/** A `POST /hosts` body for `name` with the test host key (plus any other settings). */
export function hostBody(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, publicKey: TEST_HOST_KEY.publicKey, ...extra };
}
