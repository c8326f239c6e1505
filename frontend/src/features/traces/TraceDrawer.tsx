import { Alert, Badge, Button, Code, Drawer, Group, Stack, Table, Text, Title } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { IconChevronDown, IconChevronRight } from '@tabler/icons-react';
import { useId, type ReactNode } from 'react';
import type { TraceAttempt, TraceDetail } from '../../api/types.gen';
import { CopyIconButton } from '../../components/CopyIconButton';
import { DescriptionList } from '../../components/DescriptionList';
import { QueryResult } from '../../components/QueryResult';
import { Conversation } from './Conversation';
import { callNames, readInput, readOutput, readRecordedToolCalls, toolNames } from './conversation';
import { formatCost, formatCount, formatMillis, formatStatus, isSuccess } from './traceFormat';
import { useTrace } from './useTraces';

interface TraceDrawerProps {
  /** The open trace; null when the drawer is closed. */
  id: string | null;
  onClose: () => void;
}

export function TraceDrawer({ id, onClose }: TraceDrawerProps) {
  return (
    <Drawer
      opened={id !== null}
      onClose={onClose}
      position="right"
      size="xl"
      title="Trace details"
      closeButtonProps={{ 'aria-label': 'Close' }}
    >
      {id !== null ? <TraceDetailLoader key={id} id={id} /> : null}
    </Drawer>
  );
}

function TraceDetailLoader({ id }: { id: string }) {
  const trace = useTrace(id);
  return (
    <QueryResult query={trace} what="the trace">
      {(detail) => <TraceDetailView detail={detail} />}
    </QueryResult>
  );
}

function Section({ title, children }: { title: string; children: ReactNode }) {
  const titleId = useId();
  return (
    <Stack component="section" aria-labelledby={titleId} gap="xs">
      <Title order={3} size="h5" id={titleId}>
        {title}
      </Title>
      {children}
    </Stack>
  );
}

export function TraceDetailView({ detail }: { detail: TraceDetail }) {
  const input = readInput(detail.input);
  const output = readOutput(detail.output);
  if (output.length > 0 && output.every((m) => m.toolCalls.length === 0)) {
    const recorded = readRecordedToolCalls(detail.toolCalls);
    if (recorded.length > 0 && output[0]) output[0] = { ...output[0], toolCalls: recorded };
  }
  const names = callNames([...input, ...output]);
  const tools = toolNames(detail.tools);
  const metadata = Object.entries(detail.metadata).sort(([a], [b]) => a.localeCompare(b));

  return (
    <Stack gap="lg">
      <Summary detail={detail} />
      <Section title="Conversation">
        {input.length > 0 ? (
          <Conversation label="Request messages" messages={input} callNames={names} />
        ) : (
          <Text size="sm" c="dimmed">
            No request body was recorded.
          </Text>
        )}
        {tools.length > 0 ? (
          <Text size="sm" c="dimmed">
            Tools offered: <Code>{tools.join(', ')}</Code>
          </Text>
        ) : null}
      </Section>
      <Section title="Response">
        {output.length > 0 ? (
          <Conversation label="Response messages" messages={output} callNames={names} />
        ) : (
          <Text size="sm" c="dimmed">
            {detail.error ? 'No answer: the request failed.' : 'No response body was recorded.'}
          </Text>
        )}
      </Section>
      <Section title="Timings and tokens">
        <DescriptionList
          cols={{ base: 2, sm: 3 }}
          items={[
            { label: 'Latency', value: formatMillis(detail.latencyMs) },
            {
              label: 'Time to first token',
              value: detail.stream && detail.ttftMs > 0 ? formatMillis(detail.ttftMs) : '—',
            },
            { label: 'Cost', value: formatCost(detail.costUsd) },
            { label: 'Prompt tokens', value: formatCount(detail.usage.promptTokens) },
            { label: 'Cached tokens', value: formatCount(detail.usage.cachedTokens) },
            { label: 'Cache-write tokens', value: formatCount(detail.usage.cacheWriteTokens) },
            { label: 'Completion tokens', value: formatCount(detail.usage.completionTokens) },
            { label: 'Reasoning tokens', value: formatCount(detail.usage.reasoningTokens) },
            { label: 'Finish reason', value: detail.finishReason || '—' },
          ]}
        />
        {detail.costBreakdown ? <CostBreakdownTable breakdown={detail.costBreakdown} /> : null}
        {!detail.costBreakdown && detail.costUsd === 0 ? (
          <Text size="xs" c="dimmed">
            No price is known for this model, so its cost counts as zero.
          </Text>
        ) : null}
      </Section>
      <Section title="Attempts">
        <AttemptsTable attempts={detail.attempts} />
      </Section>
      <Section title="Request details">
        <DescriptionList
          items={[
            { label: 'User', value: detail.user || '—' },
            { label: 'User agent', value: detail.userAgent || '—' },
            { label: 'Endpoint', value: detail.endpoint },
            { label: 'Requested model', value: detail.requestedModel },
          ]}
        />
        <Text size="sm" fw={600} mt="xs">
          Metadata
        </Text>
        {metadata.length > 0 ? (
          <Table aria-label="Metadata" withTableBorder>
            <Table.Tbody>
              {metadata.map(([key, value]) => (
                <Table.Tr key={key}>
                  <Table.Th w="35%" ff="monospace" fw={500}>
                    {key}
                  </Table.Th>
                  <Table.Td style={{ overflowWrap: 'anywhere' }}>{value}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        ) : (
          <Text size="sm" c="dimmed">
            None. Send an X-OpenTracy-Metadata header to tag requests.
          </Text>
        )}
      </Section>
      <RawJSON detail={detail} />
    </Stack>
  );
}

function Summary({ detail }: { detail: TraceDetail }) {
  const ok = isSuccess(detail.status);
  return (
    <Stack gap="xs">
      <Group gap="xs">
        <Badge color={ok ? 'teal' : 'red'} variant="light" aria-label={`Status ${formatStatus(detail.status)}`}>
          {formatStatus(detail.status)}
        </Badge>
        <Text fw={600} ff="monospace">
          {detail.model || detail.requestedModel}
        </Text>
        {detail.alias ? (
          <Badge variant="light" color="grape" tt="none">
            alias {detail.alias}
          </Badge>
        ) : null}
        <Text c="dimmed" size="sm">
          via {detail.provider || 'no provider'}
        </Text>
        {detail.stream ? (
          <Badge variant="outline" color="gray" tt="none">
            streamed
          </Badge>
        ) : null}
      </Group>
      <Group gap={4}>
        <Text size="xs" c="dimmed">
          {new Date(detail.startedAt).toLocaleString()} · {detail.id}
        </Text>
        <CopyIconButton value={detail.id} label="Copy trace id" />
      </Group>
      {detail.error ? (
        <Alert color="red" title="The request failed">
          {detail.error}
        </Alert>
      ) : null}
    </Stack>
  );
}

const costRows = [
  ['Input', 'input'],
  ['Cached input', 'cachedInput'],
  ['Cache write', 'cacheWrite'],
  ['Output', 'output'],
  ['Reasoning', 'reasoning'],
] as const;

function CostBreakdownTable({ breakdown }: { breakdown: NonNullable<TraceDetail['costBreakdown']> }) {
  return (
    <Table withTableBorder maw={360} mt="xs" captionSide="top" aria-label="Cost breakdown">
      <Table.Caption ta="left" fw={600} c="var(--mantine-color-text)">
        Cost breakdown (at today&apos;s prices)
      </Table.Caption>
      <Table.Tbody>
        {costRows.map(([label, key]) => (
          <Table.Tr key={key}>
            <Table.Th fw={500}>{label}</Table.Th>
            <Table.Td ta="right">{formatCost(breakdown[key])}</Table.Td>
          </Table.Tr>
        ))}
        <Table.Tr>
          <Table.Th>Total</Table.Th>
          <Table.Td ta="right" fw={700}>
            {formatCost(breakdown.total)}
          </Table.Td>
        </Table.Tr>
      </Table.Tbody>
    </Table>
  );
}

/** "Retry" when the same model is tried again, "Fallback" when the next target takes over. */
function attemptKind(attempts: TraceAttempt[], i: number): string {
  const prev = attempts[i - 1];
  const cur = attempts[i];
  if (!prev || !cur) return 'First';
  return prev.provider === cur.provider && prev.model === cur.model ? 'Retry' : 'Fallback';
}

function AttemptsTable({ attempts }: { attempts: TraceAttempt[] }) {
  if (attempts.length === 0) {
    return (
      <Text size="sm" c="dimmed">
        No upstream call was made.
      </Text>
    );
  }
  return (
    <Table.ScrollContainer minWidth={560}>
      <Table aria-label="Attempts" withTableBorder>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>#</Table.Th>
            <Table.Th>Provider</Table.Th>
            <Table.Th>Model</Table.Th>
            <Table.Th>Status</Table.Th>
            <Table.Th ta="right">Latency</Table.Th>
            <Table.Th>Error</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {attempts.map((attempt, i) => (
            <Table.Tr key={i}>
              <Table.Td>
                <Text size="sm">{i + 1}</Text>
                <Text size="xs" c="dimmed">
                  {attemptKind(attempts, i)}
                </Text>
              </Table.Td>
              <Table.Td>{attempt.provider}</Table.Td>
              <Table.Td ff="monospace">{attempt.model}</Table.Td>
              <Table.Td>
                <Badge variant="light" color={isSuccess(attempt.status) ? 'teal' : 'red'}>
                  {formatStatus(attempt.status)}
                </Badge>
              </Table.Td>
              <Table.Td ta="right">{formatMillis(attempt.latencyMs)}</Table.Td>
              <Table.Td style={{ overflowWrap: 'anywhere' }}>
                <Text size="sm" c={attempt.error ? 'red' : 'dimmed'}>
                  {attempt.error || '—'}
                </Text>
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

/** The whole record; rendered only when opened, since a prompt can be megabytes. */
function RawJSON({ detail }: { detail: TraceDetail }) {
  const [opened, { toggle }] = useDisclosure(false);
  return (
    <Stack gap="xs">
      <Button
        variant="subtle"
        color="gray"
        size="compact-sm"
        aria-expanded={opened}
        leftSection={opened ? <IconChevronDown size={16} aria-hidden /> : <IconChevronRight size={16} aria-hidden />}
        onClick={toggle}
        style={{ alignSelf: 'flex-start' }}
      >
        Raw JSON
      </Button>
      {opened ? (
        <Group align="flex-start" wrap="nowrap" gap={4}>
          <Code block aria-label="Raw trace JSON" style={{ flex: 1, maxHeight: 480, overflow: 'auto' }}>
            {JSON.stringify(detail, null, 2)}
          </Code>
          <CopyIconButton value={JSON.stringify(detail, null, 2)} label="Copy raw JSON" />
        </Group>
      ) : null}
    </Stack>
  );
}
