/**
 * `mapConcurrent`: an async map over a list with at most `limit` calls in flight, answering the
 * results in the list's order. For work that mostly waits (a restic process holding its lock
 * 200 ms before it reads, an ssh round trip), where running a few at once costs little CPU and
 * saves most of the wall time. The first failure rejects the whole map; calls already started
 * run to their end, none is started after it.
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1)
    throw new RangeError(`limit must be a positive integer, not ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index] as T, index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
