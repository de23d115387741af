/**
 * A Cloudscape table with text filter, sortable columns and pagination (collection-hooks), and
 * the loading, error (the API's message) and empty states every list page needs: the page gives
 * how its rows load, the table loads them (useApi) and offers the refresh.
 */
import { useCollection } from '@cloudscape-design/collection-hooks';
import Alert from '@cloudscape-design/components/alert';
import Box from '@cloudscape-design/components/box';
import Button from '@cloudscape-design/components/button';
import Header from '@cloudscape-design/components/header';
import Pagination from '@cloudscape-design/components/pagination';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Table, { type TableProps } from '@cloudscape-design/components/table';
import TextFilter from '@cloudscape-design/components/text-filter';
import { useApi } from './useApi.ts';

/** Props of {@link ResourceTable}. */
export interface ResourceTableProps<T> {
  title: string;
  /** Names what is listed in the empty state and filter placeholder ("VMs"). */
  noun: string;
  /** The rows, from the API with the session's token. */
  load(token: string): Promise<readonly T[]>;
  /** Load again this often (live pages); absent: on refresh only. */
  refreshMs?: number;
  columns: TableProps.ColumnDefinition<T>[];
  trackBy: keyof T & string;
  pageSize?: number;
  /** More header actions beside the refresh (a create button), given the table's reload. */
  actions?(reload: () => void): React.ReactNode;
}

/** A filtered, sortable, paginated table of API objects. */
export function ResourceTable<T>(props: ResourceTableProps<T>) {
  const { data, loading, error, reload } = useApi(props.load, props.refreshMs);
  const { items, collectionProps, filterProps, paginationProps, filteredItemsCount } = useCollection(
    data ?? [],
    {
      filtering: {
        empty: <Box textAlign="center">No {props.noun}</Box>,
        noMatch: <Box textAlign="center">No {props.noun} match the filter</Box>,
      },
      sorting: {},
      pagination: { pageSize: props.pageSize ?? 20 },
    },
  );
  return (
    <SpaceBetween size="m">
      {error && (
        <Alert type="error" header={`Could not load ${props.noun}`}>
          {error}
        </Alert>
      )}
      <Table
        {...collectionProps}
        items={items}
        columnDefinitions={props.columns}
        trackBy={props.trackBy}
        loading={loading && data === undefined}
        loadingText={`Loading ${props.noun}`}
        variant="full-page"
        header={
          <Header
            variant="awsui-h1-sticky"
            counter={data ? `(${data.length})` : undefined}
            actions={
              <SpaceBetween direction="horizontal" size="xs">
                {props.actions?.(reload)}
                <Button iconName="refresh" ariaLabel={`Refresh ${props.noun}`} onClick={reload} />
              </SpaceBetween>
            }
          >
            {props.title}
          </Header>
        }
        filter={
          <TextFilter
            {...filterProps}
            filteringPlaceholder={`Find ${props.noun}`}
            filteringAriaLabel={`Filter ${props.noun}`}
            countText={`${filteredItemsCount ?? 0} matches`}
          />
        }
        pagination={
          <Pagination
            {...paginationProps}
            ariaLabels={{
              nextPageLabel: 'Next page',
              previousPageLabel: 'Previous page',
              pageLabel: (n) => `Page ${n}`,
            }}
          />
        }
      />
    </SpaceBetween>
  );
}
