/**
 * One image (`#/images/ID`): its state and last verification, its disks (sizes, format, the
 * sha256 recorded at backup time), its restore points (a chain's FULL and increments, or the one
 * full backup) and the download URLs of its stored files (`lifeboat image download URL`).
 */
import Alert from '@cloudscape-design/components/alert';
import Box from '@cloudscape-design/components/box';
import ColumnLayout from '@cloudscape-design/components/column-layout';
import Container from '@cloudscape-design/components/container';
import Header from '@cloudscape-design/components/header';
import Link from '@cloudscape-design/components/link';
import SpaceBetween from '@cloudscape-design/components/space-between';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import Table from '@cloudscape-design/components/table';
import { call } from '../api.ts';
import { formatBytes, formatDate } from '../format.ts';
import { useApi } from '../useApi.ts';
import { IMAGE_STATE } from './ImagesPage.tsx';

/** A label and its value. */
function Field({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div>
      <Box variant="awsui-key-label">{label}</Box>
      <div>{children}</div>
    </div>
  );
}

/** The image page, refreshed every 10 s (a backup or a verify may be running). */
export function ImagePage({ id }: { id: number }) {
  const { data: image, error } = useApi(
    (token) => call(token, 'GET /images/{id}', { params: { id } }),
    10_000,
  );
  const points = image
    ? image.increments.length > 0
      ? image.increments
      : [{ id: 0, type: 'FULL' as const, source: image.source, size: image.size, date: image.createdAt }]
    : [];
  return (
    <SpaceBetween size="l">
      <Header variant="h1" description={image ? `${image.mode} image of VM ${image.vmId}` : undefined}>
        {image?.name ?? `Image ${id}`}
      </Header>
      {error && (
        <Alert type="error" header="Could not load the image">
          {error}
        </Alert>
      )}
      {image && (
        <>
          <Container header={<Header variant="h2">Summary</Header>}>
            <ColumnLayout columns={4} variant="text-grid">
              <Field label="State">
                <StatusIndicator type={IMAGE_STATE[image.state]}>{image.state}</StatusIndicator>
              </Field>
              <Field label="VM">
                <Link href={`#/vms/${image.vmId}`}>{`VM ${image.vmId}`}</Link>
              </Field>
              <Field label="Datastore">
                <Link href={`#/datastores/${image.datastoreId}`}>{`Datastore ${image.datastoreId}`}</Link>
              </Field>
              <Field label="Size">{formatBytes(image.size)}</Field>
              <Field label="Verified">
                {image.verifyState ? (
                  <StatusIndicator type={image.verifyState === 'OK' ? 'success' : 'error'}>
                    {`${image.verifyState} ${formatDate(image.verifiedAt)}`}
                  </StatusIndicator>
                ) : (
                  'never'
                )}
              </Field>
              {image.verifyError && <Field label="Verify error">{image.verifyError}</Field>}
              <Field label="Created">{formatDate(image.createdAt)}</Field>
            </ColumnLayout>
          </Container>
          <Table
            header={<Header variant="h2">Disks</Header>}
            ariaLabels={{ tableLabel: 'Disks of the image' }}
            items={image.disks}
            trackBy="id"
            empty={<Box textAlign="center">No disk stored yet</Box>}
            columnDefinitions={[
              { id: 'id', header: 'Disk', cell: (d) => d.id },
              { id: 'size', header: 'Stored', cell: (d) => formatBytes(d.size) },
              { id: 'virtual', header: 'Virtual size', cell: (d) => formatBytes(d.virtualSize) },
              { id: 'format', header: 'Format', cell: (d) => d.format },
              { id: 'sha', header: 'sha256 at backup', cell: (d) => d.sha256 ?? '-' },
            ]}
          />
          <Table
            header={<Header variant="h2">Restore points</Header>}
            ariaLabels={{ tableLabel: 'Restore points of the image' }}
            items={points}
            trackBy="id"
            columnDefinitions={[
              { id: 'id', header: 'Point', cell: (p) => p.id },
              { id: 'type', header: 'Type', cell: (p) => p.type },
              { id: 'size', header: 'Size', cell: (p) => formatBytes(p.size) },
              { id: 'date', header: 'Date', cell: (p) => formatDate(p.date) },
              { id: 'source', header: 'Backup', cell: (p) => p.source },
            ]}
          />
          <Container header={<Header variant="h2">Download URLs</Header>}>
            {image.downloadUrls.length === 0 ? (
              <Box color="text-status-inactive">Nothing stored to download yet.</Box>
            ) : (
              <ul aria-label="Download URLs">
                {image.downloadUrls.map((url) => (
                  <li key={url}>
                    <Box variant="code">{url}</Box>
                  </li>
                ))}
              </ul>
            )}
          </Container>
        </>
      )}
    </SpaceBetween>
  );
}
