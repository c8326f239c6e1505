import { Badge } from '@mantine/core';
import type { ConnectionStatus } from './eventStream';
import { useConnectionStatus } from './EventStreamProvider';

const appearance: Record<ConnectionStatus, { label: string; color: string }> = {
  open: { label: 'Live', color: 'teal' },
  connecting: { label: 'Connecting…', color: 'yellow' },
  closed: { label: 'Disconnected', color: 'red' },
};

export function ConnectionIndicator() {
  const { label, color } = appearance[useConnectionStatus()];
  return (
    <Badge role="status" aria-label={`Server connection: ${label}`} variant="dot" color={color} size="lg">
      {label}
    </Badge>
  );
}
