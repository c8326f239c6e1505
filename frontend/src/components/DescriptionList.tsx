import { SimpleGrid, Text, type SimpleGridProps } from '@mantine/core';
import type { ReactNode } from 'react';

interface Description {
  label: string;
  value: ReactNode;
}

interface DescriptionListProps {
  items: Description[];
  cols?: SimpleGridProps['cols'];
}

/** Label/value pairs as a real <dl>, laid out on a grid. */
export function DescriptionList({ items, cols = { base: 1, sm: 2 } }: DescriptionListProps) {
  return (
    <SimpleGrid component="dl" cols={cols} spacing="md" verticalSpacing="sm" m={0}>
      {items.map(({ label, value }) => (
        <div key={label}>
          <Text component="dt" size="xs" c="dimmed" tt="uppercase" fw={600}>
            {label}
          </Text>
          <Text component="dd" m={0} style={{ overflowWrap: 'anywhere' }}>
            {value}
          </Text>
        </div>
      ))}
    </SimpleGrid>
  );
}
