import { Alert, Button, FileButton, Group, List, Text } from '@mantine/core';
import { IconDownload, IconUpload } from '@tabler/icons-react';
import type { MouseEvent } from 'react';
import { traceExportURL } from '../../api/client';
import type { ImportResult } from '../../api/types.gen';
import { toTraceQuery, type TraceFilters } from './filters';
import { formatCount } from './traceFormat';
import { useImportTraces } from './useTraces';

/** Downloads every trace that matches the filters, one JSON object a line. */
export function ExportButton({ filters }: { filters: TraceFilters }) {
  const href = () => traceExportURL(toTraceQuery(filters, Date.now()));
  // The time range ends now: refresh the link when it is used, not when it was drawn.
  const refresh = (event: MouseEvent<HTMLAnchorElement>) => {
    event.currentTarget.href = href();
  };
  return (
    <Button
      component="a"
      href={href()}
      download
      onClick={refresh}
      variant="default"
      leftSection={<IconDownload size={16} aria-hidden />}
    >
      Export JSONL
    </Button>
  );
}

type ImportMutation = ReturnType<typeof useImportTraces>;

export function ImportButton({ importer }: { importer: ImportMutation }) {
  return (
    <FileButton
      onChange={(file) => file && importer.mutate(file)}
      accept=".jsonl,.ndjson,.json,application/x-ndjson,application/json"
      inputProps={{ 'aria-label': 'JSONL file to import' }}
    >
      {(props) => (
        <Button
          {...props}
          variant="default"
          loading={importer.isPending}
          leftSection={<IconUpload size={16} aria-hidden />}
        >
          Import JSONL
        </Button>
      )}
    </FileButton>
  );
}

/** The outcome of the last import, until dismissed. */
export function ImportOutcome({ importer }: { importer: ImportMutation }) {
  if (importer.isError) {
    return (
      <Alert color="red" title="Import failed" withCloseButton closeButtonLabel="Dismiss" onClose={importer.reset}>
        {importer.error.message}
      </Alert>
    );
  }
  if (!importer.isSuccess) return null;
  return <ImportSummary result={importer.data} onDismiss={importer.reset} />;
}

function ImportSummary({ result, onDismiss }: { result: ImportResult; onDismiss: () => void }) {
  const { imported, skipped, errors } = result;
  const shown = errors.slice(0, 20);
  return (
    <Alert
      role="status"
      color={errors.length > 0 ? 'orange' : 'teal'}
      title={`Imported ${formatCount(imported)} ${imported === 1 ? 'trace' : 'traces'}`}
      withCloseButton
      closeButtonLabel="Dismiss"
      onClose={onDismiss}
    >
      <Group gap="md">
        <Text size="sm">{formatCount(skipped)} skipped (already present)</Text>
        <Text size="sm">
          {formatCount(errors.length)} {errors.length === 1 ? 'line' : 'lines'} with errors
        </Text>
      </Group>
      {shown.length > 0 ? (
        <List size="sm" mt="xs" aria-label="Import errors">
          {shown.map((error) => (
            <List.Item key={error.line}>
              Line {error.line}: {error.message}
            </List.Item>
          ))}
          {errors.length > shown.length ? <List.Item>… and {errors.length - shown.length} more</List.Item> : null}
        </List>
      ) : null}
    </Alert>
  );
}
