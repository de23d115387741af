import { describe, expect, it } from 'vitest';
import { jvmFlags } from './dynamodb.ts';

describe('DynamoDB Local JVM options', () => {
  it('start without the C2 compiler and with one GC thread (half the CPU of the JVM defaults)', () => {
    const flags = jvmFlags({});
    expect(flags).toContain('-XX:TieredStopAtLevel=1');
    expect(flags).toContain('-XX:+UseSerialGC');
  });
  it('are replaced by LIFEBOAT_DYNAMODB_JVM_FLAGS, an empty value meaning the JVM defaults', () => {
    expect(jvmFlags({ LIFEBOAT_DYNAMODB_JVM_FLAGS: ' -Xmx256m  -XX:+UseG1GC ' })).toEqual([
      '-Xmx256m',
      '-XX:+UseG1GC',
    ]);
    expect(jvmFlags({ LIFEBOAT_DYNAMODB_JVM_FLAGS: '' })).toEqual([]);
  });
});
