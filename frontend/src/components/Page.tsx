import { Group, Stack, Text, Title } from '@mantine/core';
import type { ReactNode } from 'react';

interface PageProps {
  title: string;
  description?: ReactNode;
  /** Buttons at the right of the title, e.g. "Add provider". */
  actions?: ReactNode;
  /**
   * Use the full width and exactly the window's height, for a screen whose main content scrolls
   * inside itself (a long table); that content takes the height the rest leaves (flex: 1).
   */
  fill?: boolean;
  children: ReactNode;
}

const fillHeight = 'calc(100dvh - var(--app-shell-header-height, 0px) - 2 * var(--mantine-spacing-lg))';

/** Every screen: one h1, an optional one-line description, then content. */
export function Page({ title, description, actions, fill = false, children }: PageProps) {
  return (
    <Stack gap="lg" maw={fill ? undefined : 980} h={fill ? fillHeight : undefined}>
      <Group justify="space-between" align="flex-start" wrap={fill ? 'wrap' : 'nowrap'} gap="md">
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
