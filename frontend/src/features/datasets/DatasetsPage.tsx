import { Text } from '@mantine/core';
import { IconDatabase } from '@tabler/icons-react';
import { EmptyState } from '../../components/EmptyState';
import { Page } from '../../components/Page';

export function DatasetsPage() {
  return (
    <Page title="Datasets" description="Curated examples to train a student model on.">
      <EmptyState
        icon={IconDatabase}
        title="No datasets yet — drag clusters here"
        next={{ label: 'Go to Clusters', to: '/clusters' }}
      >
        <Text>
          A dataset is built from clusters: once your traces have formed clusters, drag the ones your app should
          handle locally into a dataset. Their requests and responses become the training examples.
        </Text>
      </EmptyState>
    </Page>
  );
}
