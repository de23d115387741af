/** Loading an API answer into a page: items, loading and error states, reload. */
import { useCallback, useEffect, useState } from 'react';
import { useSession } from './session.tsx';

/** What a page shows while loading, on error and when loaded. */
export interface Loaded<T> {
  data: T | undefined;
  loading: boolean;
  error: string | undefined;
  reload(): void;
}

/**
 * Run `load(token)` on mount, on reload and every `refreshMs` (live pages); the API's message on
 * failure. The previous data stays shown during a refresh.
 */
export function useApi<T>(load: (token: string) => Promise<T>, refreshMs?: number): Loaded<T> {
  const { token } = useSession();
  const [data, setData] = useState<T>();
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string>();
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  // biome-ignore lint/correctness/useExhaustiveDependencies: `load` is a new closure each render; tick triggers reloads.
  useEffect(() => {
    let live = true;
    setLoading(true);
    load(token).then(
      (value) => {
        if (!live) return;
        setData(value);
        setError(undefined);
        setLoading(false);
      },
      (err: unknown) => {
        if (!live) return;
        setError(err instanceof Error ? err.message : String(err));
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
  }, [token, tick]);
  useEffect(() => {
    if (!refreshMs) return;
    const timer = setInterval(reload, refreshMs);
    return () => clearInterval(timer);
  }, [refreshMs, reload]);
  return { data, loading, error, reload };
}
