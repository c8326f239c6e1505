import { Group, TextInput } from '@mantine/core';
import type { ReactNode } from 'react';
import { CopyIconButton } from './CopyIconButton';

interface CopyFieldProps {
  /** Visible label and accessible name of the read-only field. */
  label: string;
  description?: ReactNode;
  /** What the copy button copies. */
  value: string;
  /** What the field shows, when it differs from `value` (a masked secret). */
  shown?: string;
  copyLabel: string;
  /** Extra controls after the field, e.g. a show/hide button. */
  actions?: ReactNode;
}

export function CopyField({ label, description, value, shown = value, copyLabel, actions }: CopyFieldProps) {
  return (
    <Group gap="xs" align="flex-end" wrap="nowrap">
      <TextInput
        label={label}
        description={description}
        value={shown}
        readOnly
        flex={1}
        styles={{ input: { fontFamily: 'var(--mantine-font-family-monospace)' } }}
        rightSection={<CopyIconButton value={value} label={copyLabel} />}
      />
      {actions}
    </Group>
  );
}
