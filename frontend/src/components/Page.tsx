import { Stack, Text, Title } from '@mantine/core';
import type { ReactNode } from 'react';

interface PageProps {
  title: string;
  description?: ReactNode;
  children: ReactNode;
}

/** Every screen: one h1, an optional one-line description, then content. */
export function Page({ title, description, children }: PageProps) {
  return (
    <Stack gap="lg" maw={980}>
      <div>
        <Title order={1}>{title}</Title>
        {description && <Text c="dimmed">{description}</Text>}
      </div>
      {children}
    </Stack>
  );
}
