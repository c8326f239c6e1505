import { Anchor, Badge, Box, Card, Table, Text } from '@mantine/core';
import { useVirtualizer } from '@tanstack/react-virtual';
import { useEffect, useRef } from 'react';
import { Link } from 'react-router-dom';
import type { TraceSummary } from '../../api/types.gen';
import {
  formatCost,
  formatCount,
  formatMillis,
  formatStatus,
  formatTraceTime,
  isSuccess,
  totalTokens,
} from './traceFormat';

/** Rows have one line of text each, so one fixed height; the virtualizer needs no measuring. */
export const TRACE_ROW_HEIGHT = 41;
/** Fetch the next page while this many loaded rows are still below the viewport. */
const LOAD_AHEAD = 15;

const columns = [
  { name: 'Time', width: 150 },
  { name: 'Model', width: 180 },
  { name: 'Provider', width: 100 },
  { name: 'Status', width: 84 },
  { name: 'Latency', width: 84, numeric: true },
  { name: 'Tokens', width: 76, numeric: true },
  { name: 'Cost', width: 92, numeric: true },
  { name: 'Prompt', width: undefined },
] as const;

const oneLine = { whiteSpace: 'nowrap', overflow: 'hidden', textOverflow: 'ellipsis' } as const;

interface TracesTableProps {
  traces: TraceSummary[];
  hasMore: boolean;
  loadingMore: boolean;
  onLoadMore: () => void;
  /** The link that opens a trace in the drawer, keeping the filters. */
  linkTo: (id: string) => string;
  onOpen: (id: string) => void;
  openId: string | null;
}

/** Only the rows in view (plus a margin) are in the DOM; spacer rows stand in for the rest. */
export function TracesTable({ traces, hasMore, loadingMore, onLoadMore, linkTo, onOpen, openId }: TracesTableProps) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: traces.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => TRACE_ROW_HEIGHT,
    getItemKey: (index) => traces[index]?.id ?? index,
    overscan: 6,
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items.at(-1)?.index ?? -1;

  useEffect(() => {
    if (hasMore && !loadingMore && lastIndex >= traces.length - LOAD_AHEAD) onLoadMore();
  }, [hasMore, loadingMore, lastIndex, traces.length, onLoadMore]);

  const paddingTop = items[0]?.start ?? 0;
  const paddingBottom = virtualizer.getTotalSize() - (items.at(-1)?.end ?? 0);

  return (
    <Card withBorder padding={0} style={{ flex: 1, minHeight: 320, display: 'flex' }}>
      <Box ref={scrollRef} style={{ flex: 1, overflow: 'auto' }}>
        <Table
          aria-label="Traces"
          aria-rowcount={hasMore ? -1 : traces.length + 1}
          stickyHeader
          highlightOnHover
          horizontalSpacing="sm"
          layout="fixed"
          miw={960}
        >
          <colgroup>
            {columns.map((column) => (
              <col key={column.name} style={{ width: column.width }} />
            ))}
          </colgroup>
          <Table.Thead>
            <Table.Tr aria-rowindex={1}>
              {columns.map((column) => (
                <Table.Th key={column.name} ta={'numeric' in column ? 'right' : undefined}>
                  {column.name}
                </Table.Th>
              ))}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            <Spacer height={paddingTop} />
            {items.map((item) => {
              const trace = traces[item.index];
              return trace ? (
                <TraceRow
                  key={item.key}
                  trace={trace}
                  rowIndex={item.index + 2}
                  href={linkTo(trace.id)}
                  onOpen={onOpen}
                  open={trace.id === openId}
                />
              ) : null;
            })}
            <Spacer height={paddingBottom} />
          </Table.Tbody>
        </Table>
      </Box>
    </Card>
  );
}

function Spacer({ height }: { height: number }) {
  if (height <= 0) return null;
  return (
    <tr aria-hidden>
      <td colSpan={columns.length} style={{ height, padding: 0, border: 0 }} />
    </tr>
  );
}

interface TraceRowProps {
  trace: TraceSummary;
  rowIndex: number;
  href: string;
  onOpen: (id: string) => void;
  open: boolean;
}

function TraceRow({ trace, rowIndex, href, onOpen, open }: TraceRowProps) {
  const ok = isSuccess(trace.status);
  // The whole row opens the trace for the mouse; keyboards reach it through the link in the first cell.
  return (
    <Table.Tr
      aria-rowindex={rowIndex}
      aria-current={open ? 'true' : undefined}
      onClick={() => onOpen(trace.id)}
      h={TRACE_ROW_HEIGHT}
      bg={open ? 'var(--mantine-primary-color-light)' : undefined}
      style={{ cursor: 'pointer' }}
    >
      <Table.Td style={oneLine}>
        <Anchor
          component={Link}
          to={href}
          size="sm"
          c="inherit"
          onClick={(event) => event.stopPropagation()}
          title={new Date(trace.startedAt).toLocaleString()}
        >
          {formatTraceTime(trace.startedAt)}
        </Anchor>
      </Table.Td>
      <Table.Td style={oneLine}>
        <Text span size="sm" ff="monospace">
          {trace.model || trace.requestedModel}
        </Text>
        {trace.alias ? (
          <Badge ml={6} size="xs" variant="light" color="grape" tt="none">
            {trace.alias}
          </Badge>
        ) : null}
      </Table.Td>
      <Table.Td style={oneLine}>
        <Text span size="sm">
          {trace.provider || '—'}
        </Text>
      </Table.Td>
      <Table.Td>
        <Badge variant="light" color={ok ? 'teal' : 'red'} style={{ minWidth: 'max-content' }} title={trace.error}>
          {formatStatus(trace.status)}
        </Badge>
      </Table.Td>
      <Table.Td ta="right" style={oneLine}>
        <Text span size="sm">
          {formatMillis(trace.latencyMs)}
        </Text>
      </Table.Td>
      <Table.Td ta="right" style={oneLine}>
        <Text span size="sm" title={`${trace.usage.promptTokens} prompt + ${trace.usage.completionTokens} completion`}>
          {formatCount(totalTokens(trace))}
        </Text>
      </Table.Td>
      <Table.Td ta="right" style={oneLine}>
        <Text span size="sm">
          {formatCost(trace.costUsd)}
        </Text>
      </Table.Td>
      <Table.Td style={oneLine}>
        <Text span size="sm" c={trace.preview ? undefined : 'dimmed'}>
          {trace.preview || trace.error || '(no prompt text)'}
        </Text>
      </Table.Td>
    </Table.Tr>
  );
}
