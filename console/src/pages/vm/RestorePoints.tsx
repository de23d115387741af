/**
 * A VM's restore points as a timeline of chains: each image is a chain, its FULL first and then
 * its increments, each with its size and date; a FULL that is not point 0 is the new base of a
 * flattened chain (KEEP_LAST merged the points before it) and is marked so.
 */
import Badge from '@cloudscape-design/components/badge';
import Box from '@cloudscape-design/components/box';
import Container from '@cloudscape-design/components/container';
import Header from '@cloudscape-design/components/header';
import SpaceBetween from '@cloudscape-design/components/space-between';
import StatusIndicator from '@cloudscape-design/components/status-indicator';
import type { Image } from '../../api.ts';
import { formatBytes, formatDate } from '../../format.ts';
import { IMAGE_STATE } from '../ImagesPage.tsx';

/** One restore point of a chain. */
export interface Point {
  id: number;
  type: 'FULL' | 'INCREMENT';
  size: number;
  date: string;
  /** A FULL made by a flatten: the points before `id` were merged into it. */
  flattened: boolean;
}

/** The points of `image` in chain order: an image without increments is one FULL point. */
export function chainPoints(image: Image): Point[] {
  if (image.increments.length === 0) {
    return [{ id: 0, type: image.mode, size: image.size, date: image.createdAt, flattened: false }];
  }
  return [...image.increments]
    .sort((a, b) => a.id - b.id)
    .map((inc, index) => ({
      id: inc.id,
      type: inc.type,
      size: inc.size,
      date: inc.date,
      flattened: index === 0 && inc.type === 'FULL' && inc.id > 0,
    }));
}

function PointCard({ point, imageId }: { point: Point; imageId: number }) {
  return (
    <li
      aria-label={`Image ${imageId} point ${point.id}: ${point.type}${point.flattened ? ' (flattened)' : ''}, ${formatBytes(point.size)}, ${formatDate(point.date)}`}
      style={{
        listStyle: 'none',
        minWidth: 150,
        padding: '8px 12px',
        borderLeft: `4px solid ${point.type === 'FULL' ? '#0972d3' : '#7d8998'}`,
        background: '#f4f4f4',
        borderRadius: 4,
      }}
    >
      <SpaceBetween size="xxs">
        <SpaceBetween direction="horizontal" size="xs">
          <Badge color={point.type === 'FULL' ? 'blue' : 'grey'}>{point.type}</Badge>
          {point.flattened && <Badge color="severity-low">flattened</Badge>}
        </SpaceBetween>
        <Box variant="small">Point {point.id}</Box>
        <Box fontWeight="bold">{formatBytes(point.size)}</Box>
        <Box variant="small">{formatDate(point.date)}</Box>
      </SpaceBetween>
    </li>
  );
}

/** The timeline of `images` (the VM's), newest chain first. */
export function RestorePoints({ images }: { images: Image[] }) {
  const chains = [...images].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  return (
    <Container
      header={
        <Header
          variant="h2"
          counter={`(${chains.length})`}
          description="Each chain: its FULL, then its increments"
        >
          Restore points
        </Header>
      }
    >
      {chains.length === 0 ? (
        <Box textAlign="center">No restore points yet</Box>
      ) : (
        <SpaceBetween size="l">
          {chains.map((image) => (
            <section key={image.id} aria-label={`Chain of image ${image.id}`}>
              <SpaceBetween size="xs">
                <SpaceBetween direction="horizontal" size="s" alignItems="center">
                  <Box variant="h3" tagOverride="h3">
                    Image {image.id} ({image.name})
                  </Box>
                  <StatusIndicator type={IMAGE_STATE[image.state]}>{image.state}</StatusIndicator>
                  <Box variant="small">
                    {image.mode} · {formatBytes(image.size)} · datastore {image.datastoreId}
                  </Box>
                </SpaceBetween>
                <ol
                  style={{ display: 'flex', flexWrap: 'wrap', gap: 8, margin: 0, padding: 0 }}
                  aria-label={`Restore points of image ${image.id}`}
                >
                  {chainPoints(image).map((point) => (
                    <PointCard key={point.id} point={point} imageId={image.id} />
                  ))}
                </ol>
              </SpaceBetween>
            </section>
          ))}
        </SpaceBetween>
      )}
    </Container>
  );
}
