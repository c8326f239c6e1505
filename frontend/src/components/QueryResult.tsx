import { Alert, Group, Loader, Text } from '@mantine/core';
import { IconAlertCircle } from '@tabler/icons-react';
import type { UseQueryResult } from '@tanstack/react-query';
import type { ReactNode } from 'react';

interface QueryResultProps<T> {
  query: UseQueryResult<T>;
  /** What is loading, e.g. "instance info"; used in the loading and error text. */
  what: string;
  children: (data: T) => ReactNode;
}

/** Renders a query's loading and error states, and its data once it is there. */
export function QueryResult<T>({ query, what, children }: QueryResultProps<T>) {
  if (query.isPending) {
    return (
      <Group gap="xs" role="status">
        <Loader size="sm" />
        <Text c="dimmed">Loading {what}…</Text>
      </Group>
    );
  }
  if (query.isError) {
    return (
      <Alert color="red" title={`Could not load ${what}`} icon={<IconAlertCircle aria-hidden />}>
        {query.error.message}
      </Alert>
    );
  }
  return children(query.data);
}
