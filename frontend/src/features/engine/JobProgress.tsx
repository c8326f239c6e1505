import { Progress, Stack, Text } from '@mantine/core';
import type { Job } from '../../api/types.gen';
import { describeProgress, progressPercent } from './format';

interface JobProgressProps {
  job: Job;
  /** The progress bar's accessible name, e.g. "Download progress of Qwen/Qwen3-0.6B". */
  label: string;
}

/** A job's progress bar and what it is doing, in words. */
export function JobProgress({ job, label }: JobProgressProps) {
  const percent = progressPercent(job);
  const running = job.state === 'running';
  return (
    <Stack gap={4}>
      <Progress
        aria-label={label}
        value={percent ?? 100}
        // While the total is unknown (starting, unpacking) the bar moves without a number.
        striped={running && percent === undefined}
        animated={running && (percent === undefined || job.phase === 'extract')}
        color={running ? 'blue' : 'gray'}
        size="md"
      />
      <Text size="xs" c="dimmed">
        {describeProgress(job)}
      </Text>
    </Stack>
  );
}
