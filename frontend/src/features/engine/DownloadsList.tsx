import { Badge, Button, Card, Group, Stack, Text, Title } from '@mantine/core';
import { useId } from 'react';
import type { Job } from '../../api/types.gen';
import { jobStateLabels } from './format';
import { JobProgress } from './JobProgress';
import { useCancelDownload, useDismissDownload, useDownloadModel } from './useLocalModels';

/** Downloads that run, and those that did not finish (with a way to resume them). */
export function DownloadsList({ downloads }: { downloads: Job[] }) {
  const titleId = useId();
  if (downloads.length === 0) return null;
  return (
    <Card withBorder padding="lg" component="section" aria-labelledby={titleId}>
      <Stack gap="md">
        <Title order={2} size="h4" id={titleId}>
          Downloads
        </Title>
        {downloads.map((job) => (
          <DownloadItem key={job.id} job={job} />
        ))}
      </Stack>
    </Card>
  );
}

function DownloadItem({ job }: { job: Job }) {
  const cancel = useCancelDownload();
  const dismiss = useDismissDownload();
  const resume = useDownloadModel();
  const repo = job.repo ?? '';
  const state = jobStateLabels[job.state];
  const error = cancel.error ?? dismiss.error ?? resume.error;
  return (
    <Stack gap={6} role="group" aria-label={`Download of ${repo}`}>
      <Group justify="space-between" wrap="nowrap">
        <Group gap="xs">
          <Text fw={600}>{repo}</Text>
          {job.revision ? (
            <Text size="sm" c="dimmed">
              @ {job.revision}
            </Text>
          ) : null}
          <Badge variant="light" color={state.color}>
            {state.label}
          </Badge>
        </Group>
        <Group gap={4} wrap="nowrap">
          {job.state === 'running' ? (
            <Button
              variant="default"
              size="compact-sm"
              aria-label={`Cancel download of ${repo}`}
              loading={cancel.isPending}
              onClick={() => cancel.mutate(job.id)}
            >
              Cancel
            </Button>
          ) : (
            <>
              <Button
                size="compact-sm"
                aria-label={`Resume download of ${repo}`}
                loading={resume.isPending}
                onClick={() => resume.mutate(job.revision ? { repo, revision: job.revision } : { repo })}
              >
                {job.state === 'failed' ? 'Retry' : 'Resume'}
              </Button>
              <Button
                variant="subtle"
                color="gray"
                size="compact-sm"
                aria-label={`Dismiss download of ${repo}`}
                loading={dismiss.isPending}
                onClick={() => dismiss.mutate(job.id)}
              >
                Dismiss
              </Button>
            </>
          )}
        </Group>
      </Group>
      <JobProgress job={job} label={`Download progress of ${repo}`} />
      {job.state !== 'running' && job.error ? (
        <Text size="sm" c={job.state === 'failed' ? 'red' : 'dimmed'}>
          {job.error}
        </Text>
      ) : null}
      {error ? (
        <Text size="sm" c="red" role="alert">
          {error.message}
        </Text>
      ) : null}
    </Stack>
  );
}
