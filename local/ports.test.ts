import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { assertPortFree, ephemeralLow, freePort, freePorts, freeStackPorts } from './ports.ts';

describe('free ports for local mode', () => {
  it('are distinct, bindable, and below the ephemeral range that outgoing connections draw from', async () => {
    const low = ephemeralLow();
    const ports = await freePorts(12);
    expect(new Set(ports).size).toBe(12);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(1024);
      expect(port).toBeLessThan(low);
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve());
      });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(Object.values(await freeStackPorts()).every((p) => p < low)).toBe(true);
  });

  it("read the ephemeral range's start from Linux, 32768 when it cannot be read", () => {
    expect(ephemeralLow(() => '32768\t60999\n')).toBe(32768);
    expect(ephemeralLow(() => '49152 65535')).toBe(49152);
    expect(ephemeralLow(() => 'garbage')).toBe(32768);
    expect(
      ephemeralLow(() => {
        throw new Error('no /proc');
      }),
    ).toBe(32768);
  });

  it('are checked before local mode binds them: one held by another process is named in the refusal', async () => {
    const port = await freePort();
    await assertPortFree(port, 'api');
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', () => resolve()));
    try {
      await expect(assertPortFree(port, 'api')).rejects.toThrow(
        `port ${port} (api) is already in use by another process`,
      );
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
    await assertPortFree(port, 'api');
  });
});
