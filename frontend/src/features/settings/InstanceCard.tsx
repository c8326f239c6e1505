import { Card, Code, Stack, Title } from '@mantine/core';
import { useId } from 'react';
import type { Info, Shell } from '../../api/types.gen';
import { DescriptionList } from '../../components/DescriptionList';

const shellName: Record<Shell, string> = {
  desktop: 'Desktop app',
  server: 'Server (opentracy serve)',
};

export function InstanceCard({ info }: { info: Info }) {
  const titleId = useId();
  return (
    <Card withBorder padding="lg" component="section" aria-labelledby={titleId}>
      <Stack gap="md">
        <Title order={2} size="h4" id={titleId}>
          Instance
        </Title>
        <DescriptionList
          items={[
            { label: 'Version', value: info.version },
            { label: 'Running as', value: shellName[info.shell] },
            { label: 'Data directory', value: <Code>{info.dataDir}</Code> },
            { label: 'Config file', value: info.configFile ? <Code>{info.configFile}</Code> : 'None (defaults)' },
            { label: 'Started', value: new Date(info.startedAt).toLocaleString() },
          ]}
        />
      </Stack>
    </Card>
  );
}
