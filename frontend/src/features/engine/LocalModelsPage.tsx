import { Code, Stack, Text, Title } from '@mantine/core';
import { IconCpu } from '@tabler/icons-react';
import { EmptyState } from '../../components/EmptyState';
import { Page } from '../../components/Page';
import { QueryResult } from '../../components/QueryResult';
import { DownloadForm } from './DownloadForm';
import { DownloadsList } from './DownloadsList';
import { EngineCard } from './EngineCard';
import { LocalModelsTable, StudentsTable } from './LocalModelsTable';
import { useEngine, useLiveJobs, useLocalModels } from './useLocalModels';

export function LocalModelsPage() {
  const engine = useEngine();
  const models = useLocalModels();
  useLiveJobs();

  return (
    <Page
      title="Local models"
      description="Open models this machine runs for the gateway, and the GPU runtime the engine uses."
    >
      <QueryResult query={engine} what="the engine status">
        {(data) => <EngineCard engine={data} />}
      </QueryResult>
      <DownloadForm />
      <QueryResult query={models} what="local models">
        {(data) => (
          <>
            <DownloadsList downloads={data.downloads} />
            {data.models.length > 0 ? (
              <Stack gap="xs">
                <Title order={2} size="h4">
                  Models
                </Title>
                <LocalModelsTable models={data.models} provider={data.provider} />
              </Stack>
            ) : (
              <EmptyState icon={IconCpu} title="No local models yet">
                <Text>
                  Download an open model above (Qwen3 and Llama 3.x run on the engine), then call it through the gateway
                  as <Code>{data.provider}/owner--name</Code>, or point an alias at it.
                </Text>
              </EmptyState>
            )}
            {data.students.length > 0 ? (
              <Stack gap="xs">
                <Title order={2} size="h4">
                  Students
                </Title>
                <StudentsTable students={data.students} provider={data.provider} />
              </Stack>
            ) : null}
          </>
        )}
      </QueryResult>
    </Page>
  );
}
