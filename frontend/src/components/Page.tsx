import { Group, Stack, Text, Title } from '@mantine/core';
import type { ReactNode } from 'react';

interface PageProps {
  title: string;
  description?: ReactNode;
  /** Buttons at the right of the title, e.g. "Add provider". */
  actions?: ReactNode;
  children: ReactNode;
}

/** Every screen: one h1, an optional one-line description, then content. */
export function Page({ title, description, actions, children }: PageProps) {
  return (
    <Stack gap="lg" maw={980}>
      <Group justify="space-between" align="flex-start" wrap="nowrap" gap="md">
        <div>
          <Title order={1}>{title}</Title>
          {description && <Text c="dimmed">{description}</Text>}
        </div>
        {actions}
      </Group>
      {children}
    </Stack>
  );
}
