import { Button, Card, Stack, ThemeIcon, Title } from '@mantine/core';
import type { Icon } from '@tabler/icons-react';
import { useId, type ReactNode } from 'react';
import { Link } from 'react-router-dom';

interface EmptyStateProps {
  icon: Icon;
  title: string;
  /** What to do first; paragraphs and code, centred under the title. */
  children: ReactNode;
  /** The screen to go to next. */
  next?: { label: string; to: string };
  /** A button that acts on this screen, e.g. "Add provider"; shown instead of `next`. */
  action?: ReactNode;
}

export function EmptyState({ icon: IconComponent, title, children, next, action }: EmptyStateProps) {
  const titleId = useId();
  return (
    <Card component="section" aria-labelledby={titleId} withBorder padding="xl">
      <Stack align="center" ta="center" gap="sm" py="lg">
        <ThemeIcon size={56} radius="xl" variant="light">
          <IconComponent size={30} stroke={1.5} aria-hidden />
        </ThemeIcon>
        <Title order={2} size="h3" id={titleId}>
          {title}
        </Title>
        <Stack gap="xs" align="center" maw={620} c="dimmed">
          {children}
        </Stack>
        {action ??
          (next ? (
            <Button component={Link} to={next.to} variant="light">
              {next.label}
            </Button>
          ) : null)}
      </Stack>
    </Card>
  );
}
