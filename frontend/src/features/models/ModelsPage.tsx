import { Code, Text } from '@mantine/core';
import { IconArrowsExchange } from '@tabler/icons-react';
import { EmptyState } from '../../components/EmptyState';
import { Page } from '../../components/Page';

export function ModelsPage() {
  return (
    <Page title="Models & Aliases" description="The model names your app calls, and what they route to.">
      <EmptyState icon={IconArrowsExchange} title="Call an alias, swap the model behind it">
        <Text>
          An alias is a model name your app uses instead of a provider&apos;s. Call <Code>model=&quot;smart&quot;</Code>{' '}
          and the gateway routes it to a provider model today.
        </Text>
        <Text>
          When a distillation run finishes, its student model appears here, and you can point <Code>smart</Code> at
          it: your app keeps calling the same name, without a code change or a redeploy.
        </Text>
      </EmptyState>
    </Page>
  );
}
