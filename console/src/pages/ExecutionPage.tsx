/** One execution: its state, phase, bytes, error text, and Cancel while it has not ended. */
import Alert from '@cloudscape-design/components/alert';
import Button from '@cloudscape-design/components/button';
import Container from '@cloudscape-design/components/container';
import Header from '@cloudscape-design/components/header';
import KeyValuePairs from '@cloudscape-design/components/key-value-pairs';
import ProgressBar from '@cloudscape-design/components/progress-bar';
import SpaceBetween from '@cloudscape-design/components/space-between';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import { useEffect, useRef, useState } from 'react';
import { call, type Execution } from '../api.ts';
import { formatBytes, formatDate, formatDuration, type ProgressSample, rateAndEta } from '../format.ts';
import { useSession } from '../session.tsx';
import { useApi } from '../useApi.ts';
import { bytesText, EXECUTION_STATE } from './ExecutionsPage.tsx';

const ENDED = new Set<Execution['state']>(['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED']);

/** The execution page of `id`, refreshed every 3 s. */
export function ExecutionPage({ id }: { id: string }) {
  const { token } = useSession();
  const { data: e, error, reload } = useApi((t) => call(t, 'GET /executions/{id}', { params: { id } }), 3000);
  const [cancelling, setCancelling] = useState(false);
  const [cancelError, setCancelError] = useState<string>();
  // Rate and ETA from the last two readings that moved (the API gives bytes, not speed).
  const lastSample = useRef<ProgressSample | undefined>(undefined);
  const [speed, setSpeed] = useState<ReturnType<typeof rateAndEta>>();
  useEffect(() => {
    if (e?.state !== 'RUNNING') {
      setSpeed(undefined);
      return;
    }
    const now = { bytes: e.bytesDone, at: Date.now() };
    const before = lastSample.current;
    if (before && now.bytes !== before.bytes) setSpeed(rateAndEta(before, now, e.bytesTotal));
    if (!before || now.bytes !== before.bytes) lastSample.current = now;
  }, [e]);

  async function cancel() {
    setCancelling(true);
    setCancelError(undefined);
    try {
      await call(token, 'POST /executions/{id}/cancel', { params: { id } });
      reload();
    } catch (err) {
      setCancelError(err instanceof Error ? err.message : String(err));
    } finally {
      setCancelling(false);
    }
  }

  return (
    <SpaceBetween size="m">
      <Header
        variant="h1"
        actions={
          <Button onClick={cancel} loading={cancelling} disabled={!e || ENDED.has(e.state)}>
            Cancel
          </Button>
        }
      >
        Execution {id}
      </Header>
      {cancelError && (
        <Alert type="error" header="Cancel failed">
          {cancelError}
        </Alert>
      )}
      {error && (
        <Alert type="error" header="Could not load the execution">
          {error}
        </Alert>
      )}
      {e && (
        <Container header={<Header variant="h2">Details</Header>}>
          <SpaceBetween size="l">
            <KeyValuePairs
              columns={3}
              items={[
                {
                  label: 'State',
                  value: <StatusIndicator type={EXECUTION_STATE[e.state]}>{e.state}</StatusIndicator>,
                },
                { label: 'Phase', value: e.phase },
                { label: 'Kind', value: e.kind },
                { label: 'VM', value: e.vmId ?? '-' },
                { label: 'Datastore', value: e.datastoreId ?? '-' },
                { label: 'Image', value: e.imageId ?? '-' },
                { label: 'Requested by', value: e.requestedBy },
                { label: 'Started', value: formatDate(e.startedAt) },
                { label: 'Ended', value: formatDate(e.endedAt) },
                { label: 'Rate', value: speed ? `${formatBytes(speed.rate)}/s` : '-' },
                {
                  label: 'Time left',
                  value: speed?.etaSeconds === undefined ? '-' : `about ${formatDuration(speed.etaSeconds)}`,
                },
              ]}
            />
            <ProgressBar
              label="Bytes"
              value={e.bytesTotal ? Math.round((e.bytesDone / e.bytesTotal) * 100) : 0}
              additionalInfo={bytesText(e)}
              status={ENDED.has(e.state) ? (e.state === 'SUCCEEDED' ? 'success' : 'error') : 'in-progress'}
              resultText={e.state}
            />
            {e.error && (
              <Alert type="error" header={e.error.name}>
                {e.error.message}
              </Alert>
            )}
          </SpaceBetween>
        </Container>
      )}
    </SpaceBetween>
  );
}
