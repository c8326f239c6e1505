import { Text } from '@mantine/core';
import { IconFlask } from '@tabler/icons-react';
import { EmptyState } from '../../components/EmptyState';
import { Page } from '../../components/Page';

export function DistillPage() {
  return (
    <Page title="Distill" description="Train a small local student model from a dataset.">
      <EmptyState
        icon={IconFlask}
        title="Distillation needs a dataset first"
        next={{ label: 'Go to Datasets', to: '/datasets' }}
      >
        <Text>
          Pick a dataset and OpenTracy trains a small student model that runs on this machine, learning from the
          responses your current models gave. Build a dataset from your clusters, then come back here to start a run.
        </Text>
      </EmptyState>
    </Page>
  );
}
