import { Button, Group, Text } from '@mantine/core';
import { IconCircleCheck, IconCircleX } from '@tabler/icons-react';
import type { UseMutationResult } from '@tanstack/react-query';
import type { ProviderCheck } from '../../api/types.gen';
import { formatCheck } from './providerFormat';

type CheckMutation = UseMutationResult<ProviderCheck, Error, void>;

export function CheckButton({ check }: { check: CheckMutation }) {
  return (
    <Button variant="default" size="compact-sm" loading={check.isPending} onClick={() => check.mutate()}>
      Check connection
    </Button>
  );
}

/** The outcome of the last check, announced to screen readers. */
export function CheckResult({ name, check }: { name: string; check: CheckMutation }) {
  if (check.isIdle || check.isPending) return null;
  const result: ProviderCheck = check.data ?? { ok: false, latencyMillis: 0, message: check.error?.message ?? '' };
  const Icon = result.ok ? IconCircleCheck : IconCircleX;
  return (
    <Group gap={6} wrap="nowrap" align="flex-start" role="status" aria-label={`Connection check for ${name}`}>
      <Icon size={16} color={result.ok ? 'var(--mantine-color-teal-6)' : 'var(--mantine-color-red-6)'} aria-hidden />
      <Text size="sm" c={result.ok ? 'teal' : 'red'} style={{ overflowWrap: 'anywhere' }}>
        {formatCheck(result)}
      </Text>
    </Group>
  );
}
