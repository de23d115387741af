import { describe, expect, it } from 'vitest';
import { jvmFlags } from './dynamodb.ts';

describe('DynamoDB Local JVM options', () => {
  it('start without the C2 compiler and with one GC thread (half the CPU of the JVM defaults)', () => {
    const flags = jvmFlags({});
    expect(flags).toContain('-XX:TieredStopAtLevel=1');
    expect(flags).toContain('-XX:+UseSerialGC');
  });
  it('start without the timers an idle JVM spends its time on (perf data sampling, a safepoint every second)', () => {
    const flags = jvmFlags({});
    expect(flags).toContain('-XX:-UsePerfData');
    // A diagnostic option: the JVM refuses it unless unlocked before it.
    expect(flags.indexOf('-XX:+UnlockDiagnosticVMOptions')).toBeLessThan(
      flags.indexOf('-XX:GuaranteedSafepointInterval=0'),
    );
    expect(flags.indexOf('-XX:+UnlockDiagnosticVMOptions')).toBeGreaterThanOrEqual(0);
  });
  it('are replaced by LIFEBOAT_DYNAMODB_JVM_FLAGS, an empty value meaning the JVM defaults', () => {
    expect(jvmFlags({ LIFEBOAT_DYNAMODB_JVM_FLAGS: ' -Xmx256m  -XX:+UseG1GC ' })).toEqual([
      '-Xmx256m',
      '-XX:+UseG1GC',
    ]);
    expect(jvmFlags({ LIFEBOAT_DYNAMODB_JVM_FLAGS: '' })).toEqual([]);
  });
});
