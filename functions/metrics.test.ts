import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  backupEndedMetrics,
  datastoreFreeMetric,
  emfDocument,
  emitMetrics,
  type MetricValue,
  verifyFailureMetric,
} from './metrics.ts';

/** The lines written to stdout while `run` runs, parsed. */
function captured(run: () => void): Record<string, unknown>[] {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    run();
  } finally {
    spy.mockRestore();
  }
  for (const line of lines) expect(line.endsWith('\n') && !line.slice(0, -1).includes('\n')).toBe(true);
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * The rules of CloudWatch's EMF specification a document must follow: `_aws` with a numeric
 * Timestamp and MetricDirectives (Namespace, DimensionSets of at most 30 keys, Metrics with a
 * Name and a known Unit), every named dimension and metric a member of the root, metric values
 * numbers and dimension values strings.
 */
function expectValidEmf(doc: Record<string, unknown>): void {
  const aws = doc._aws as { Timestamp: unknown; CloudWatchMetrics: unknown };
  expect(Number.isInteger(aws.Timestamp)).toBe(true);
  expect(Array.isArray(aws.CloudWatchMetrics)).toBe(true);
  for (const directive of aws.CloudWatchMetrics as Record<string, unknown>[]) {
    expect(directive.Namespace).toBe('Lifeboat');
    const sets = directive.Dimensions as string[][];
    expect(Array.isArray(sets)).toBe(true);
    for (const set of sets) {
      expect(set.length).toBeLessThanOrEqual(30);
      for (const key of set) expect(typeof doc[key]).toBe('string');
    }
    const metrics = directive.Metrics as { Name: string; Unit: string }[];
    expect(metrics.length).toBeGreaterThan(0);
    expect(metrics.length).toBeLessThanOrEqual(100);
    for (const m of metrics) {
      expect(['Count', 'Bytes', 'Seconds']).toContain(m.Unit);
      expect(typeof doc[m.Name]).toBe('number');
    }
  }
}

describe('EMF writer', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes one valid EMF document with the datastore dimension and the aggregate', () => {
    const metrics: MetricValue[] = [
      { name: 'BackupsSucceeded', value: 1, unit: 'Count' },
      { name: 'BackupBytes', value: 4096, unit: 'Bytes' },
    ];
    const doc = emfDocument(metrics, { Datastore: '100' }, 1_765_000_000_000);
    expectValidEmf(doc);
    expect(doc).toEqual({
      _aws: {
        Timestamp: 1_765_000_000_000,
        CloudWatchMetrics: [
          {
            Namespace: 'Lifeboat',
            Dimensions: [['Datastore'], []],
            Metrics: [
              { Name: 'BackupsSucceeded', Unit: 'Count' },
              { Name: 'BackupBytes', Unit: 'Bytes' },
            ],
          },
        ],
      },
      Datastore: '100',
      BackupsSucceeded: 1,
      BackupBytes: 4096,
    });
  });

  it('prints one line per metric set on stdout', () => {
    const [doc, ...rest] = captured(() =>
      backupEndedMetrics({ datastoreId: 7, succeeded: true, bytes: 1234, seconds: 12.5 }),
    );
    expect(rest).toEqual([]);
    expectValidEmf(doc as Record<string, unknown>);
    expect(doc).toMatchObject({
      Datastore: '7',
      BackupsSucceeded: 1,
      BackupsFailed: 0,
      BackupBytes: 1234,
      BackupSeconds: 12.5,
    });
  });

  it('a failed backup counts one failure and no bytes', () => {
    const [doc] = captured(() => backupEndedMetrics({ datastoreId: 7, succeeded: false, seconds: 3 }));
    expectValidEmf(doc as Record<string, unknown>);
    expect(doc).toMatchObject({ BackupsSucceeded: 0, BackupsFailed: 1, BackupSeconds: 3 });
    expect(doc).not.toHaveProperty('BackupBytes');
  });

  it('without dimensions, publishes the aggregate only', () => {
    const [doc] = captured(() => verifyFailureMetric(undefined));
    expectValidEmf(doc as Record<string, unknown>);
    expect(doc).toMatchObject({ _aws: { CloudWatchMetrics: [{ Dimensions: [[]] }] } });
    expect(doc).toMatchObject({ VerifyFailures: 1 });
  });

  it('writes nothing for an unknown free space or a value that is not a number', () => {
    expect(captured(() => datastoreFreeMetric(1, null))).toEqual([]);
    expect(captured(() => emitMetrics([{ name: 'X', value: Number.NaN, unit: 'Count' }]))).toEqual([]);
    const [doc] = captured(() => datastoreFreeMetric(1, 0));
    expect(doc).toMatchObject({ Datastore: '1', DatastoreFreeBytes: 0 });
  });
});
