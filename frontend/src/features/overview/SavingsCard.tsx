import { Anchor, Badge, Card, Group, Stack, Text, Title } from '@mantine/core';
import { IconPigMoney } from '@tabler/icons-react';
import { useId } from 'react';
import { Link } from 'react-router-dom';

/** A placeholder until an alias can point at a distilled student: then it compares the two costs. */
export function SavingsCard() {
  const titleId = useId();
  return (
    <Card withBorder padding="lg" component="section" aria-labelledby={titleId}>
      <Stack gap="xs">
        <Group gap="xs">
          <IconPigMoney size={22} aria-hidden />
          <Title order={2} size="h4" id={titleId}>
            What you would save
          </Title>
          <Badge variant="light" color="gray">
            Not yet
          </Badge>
        </Group>
        <Text c="dimmed">
          This lights up once a distilled student model is behind an alias: it will set what your requests cost on the
          teacher against what the student would have cost for the same traffic.
        </Text>
        <Text c="dimmed" size="sm">
          Get there by{' '}
          <Anchor component={Link} to="/distill">
            distilling a student
          </Anchor>{' '}
          from your traces, then pointing an alias at it on{' '}
          <Anchor component={Link} to="/models">
            Models &amp; Aliases
          </Anchor>
          .
        </Text>
      </Stack>
    </Card>
  );
}
