import { Alert, Badge, Button, Card, Group, List, Stack, Text, Title } from '@mantine/core';
import { IconAlertTriangle, IconDownload } from '@tabler/icons-react';
import { useId } from 'react';
import type { Engine, GPU } from '../../api/types.gen';
import { ConfirmButton } from '../../components/ConfirmButton';
import { DescriptionList } from '../../components/DescriptionList';
import { backendLabel, formatBytes, jobStateLabels, planStatusLabels } from './format';
import { JobProgress } from './JobProgress';
import { useCancelInstall, useInstallRuntime, useRemoveRuntime } from './useLocalModels';

/** Where the student engine runs: the GPU, the backend it chose and the GPU runtime. */
export function EngineCard({ engine }: { engine: Engine }) {
  const titleId = useId();
  const { gpu, plan } = engine;
  const status = planStatusLabels[plan.status];
  return (
    <Card withBorder padding="lg" component="section" aria-labelledby={titleId}>
      <Stack gap="md">
        <Group justify="space-between" align="flex-start">
          <Title order={2} size="h4" id={titleId}>
            Engine
          </Title>
          <Badge variant="light" color={status.color} aria-label={`Engine status: ${status.label}`}>
            {status.label}
          </Badge>
        </Group>
        <Text>{plan.message}</Text>
        {plan.warnings.length > 0 ? (
          <Alert color="yellow" title="Warnings" icon={<IconAlertTriangle aria-hidden />}>
            <List size="sm">
              {plan.warnings.map((w) => (
                <List.Item key={w}>{w}</List.Item>
              ))}
            </List>
          </Alert>
        ) : null}
        <DescriptionList
          cols={{ base: 1, sm: 2, md: 3 }}
          items={[
            { label: 'GPU', value: gpuName(gpu) },
            { label: 'GPU memory', value: gpuMemory(gpu) },
            { label: 'Driver', value: gpu.present ? `${gpu.driver ?? '?'} (CUDA ${gpu.cuda ?? '?'})` : '—' },
            { label: 'Backend', value: `${backendLabel(plan.backend)} · configured: ${engine.configBackend}` },
            { label: 'GPU runtime', value: engine.runtime ? engine.runtime.version : 'Not installed' },
          ]}
        />
        <RuntimeActions engine={engine} />
      </Stack>
    </Card>
  );
}

function gpuName(gpu: GPU): string {
  const [first, ...more] = gpu.devices;
  if (!gpu.present || !first) return `None found${gpu.reason ? ` (${gpu.reason})` : ''}`;
  return more.length > 0 ? `${first.name} + ${more.length} more` : first.name;
}

function gpuMemory(gpu: GPU): string {
  const first = gpu.devices[0];
  if (!gpu.present || !first) return '—';
  return `${formatBytes(first.memoryFree)} free of ${formatBytes(first.memoryTotal)}`;
}

/** Install (with its progress), cancel, or remove the GPU runtime. */
function RuntimeActions({ engine }: { engine: Engine }) {
  const install = useInstallRuntime();
  const cancel = useCancelInstall();
  const remove = useRemoveRuntime();
  const hintId = useId();
  const job = engine.install;

  if (job?.state === 'running') {
    return (
      <Stack gap="xs">
        <Text fw={600}>Installing GPU runtime {job.version}</Text>
        <JobProgress job={job} label="GPU runtime install progress" />
        <Group>
          <Button variant="default" size="compact-sm" loading={cancel.isPending} onClick={() => cancel.mutate(job.id)}>
            Cancel install
          </Button>
        </Group>
      </Stack>
    );
  }

  if (engine.runtime) {
    return (
      <Group>
        <ConfirmButton
          label="Remove GPU runtime"
          title="Remove the GPU runtime?"
          onConfirm={() => remove.mutateAsync()}
          onOpen={remove.reset}
          pending={remove.isPending}
          error={remove.error}
        >
          The engine uses the CPU until the runtime is installed again. Its files in the data directory are deleted.
        </ConfirmButton>
      </Group>
    );
  }

  const unfinished = job && job.state !== 'done' ? job : undefined;
  const blocked = engine.installBlocked;
  return (
    <Stack gap="xs">
      {unfinished ? (
        <Alert
          color={unfinished.state === 'failed' ? 'red' : 'yellow'}
          title={`The last install ${jobStateLabels[unfinished.state].label.toLowerCase()}`}
        >
          {unfinished.error}
        </Alert>
      ) : null}
      <Group>
        <Button
          leftSection={<IconDownload size={16} aria-hidden />}
          disabled={Boolean(blocked)}
          loading={install.isPending}
          aria-describedby={hintId}
          onClick={() => install.mutate()}
        >
          {unfinished ? 'Resume install' : 'Install GPU runtime'}
        </Button>
      </Group>
      <Text size="sm" c="dimmed" id={hintId}>
        {blocked ??
          `Downloads about ${formatBytes(engine.runtimeDownloadBytes)} (runtime ${engine.runtimeVersion}: the XLA CUDA plugin and NVIDIA libraries) from the configured wheel mirror, checked against pinned checksums.`}
      </Text>
      {install.error ? (
        <Alert color="red" role="alert" title="Could not start the install">
          {install.error.message}
        </Alert>
      ) : null}
    </Stack>
  );
}
