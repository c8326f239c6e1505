import { Button, Code, Loader, Modal, Text } from '@mantine/core';
import { IconArrowsExchange, IconPlus } from '@tabler/icons-react';
import { lazy, Suspense, useState } from 'react';
import type { Alias, Provider } from '../../api/types.gen';
import { EmptyState } from '../../components/EmptyState';
import { Page } from '../../components/Page';
import { QueryResult } from '../../components/QueryResult';
import { useProviders } from '../providers';
import { AliasHistoryDrawer } from './AliasHistory';
import { AliasesTable } from './AliasesTable';
import { useAliases } from './useAliases';

// The form's inputs (autocomplete, number, segmented) load with the first dialog, not with the app.
const AliasForm = lazy(() => import('./AliasForm').then((m) => ({ default: m.AliasForm })));

/** null: closed; "new": a new alias; an alias: editing it. */
type Dialog = null | 'new' | Alias;

/** Every configured model, as "provider/model". */
function modelSuggestions(providers: Provider[] | undefined): string[] {
  return (providers ?? []).flatMap((p) => p.models.map((model) => `${p.name}/${model}`));
}

export function ModelsPage() {
  const aliases = useAliases();
  const providers = useProviders();
  const [dialog, setDialog] = useState<Dialog>(null);
  const [historyOf, setHistoryOf] = useState<string | null>(null);
  const editing = dialog !== null && dialog !== 'new' ? dialog : undefined;
  const close = () => setDialog(null);

  const newButton = (
    <Button leftSection={<IconPlus size={16} aria-hidden />} onClick={() => setDialog('new')}>
      New alias
    </Button>
  );
  const hasAliases = (aliases.data?.length ?? 0) > 0;

  return (
    <Page
      title="Models & Aliases"
      description="The model names your app calls, and what they route to."
      actions={hasAliases ? newButton : undefined}
    >
      <QueryResult query={aliases} what="aliases">
        {(list) =>
          list.length > 0 ? (
            <>
              <AliasesTable aliases={list} onEdit={setDialog} onHistory={setHistoryOf} />
              <AliasesExplained />
            </>
          ) : (
            <EmptyState icon={IconArrowsExchange} title="Call an alias, swap the model behind it" action={newButton}>
              <AliasesExplained />
            </EmptyState>
          )
        }
      </QueryResult>
      <Modal
        opened={dialog !== null}
        onClose={close}
        title={editing ? `Edit alias ${editing.name}` : 'New alias'}
        size="lg"
        closeButtonProps={{ 'aria-label': 'Close' }}
      >
        <Suspense fallback={<Loader size="sm" aria-label="Loading the form" />}>
          <AliasForm
            key={editing?.name ?? 'new'}
            editing={editing}
            suggestions={modelSuggestions(providers.data)}
            onDone={close}
          />
        </Suspense>
      </Modal>
      <AliasHistoryDrawer name={historyOf} onClose={() => setHistoryOf(null)} />
    </Page>
  );
}

function AliasesExplained() {
  return (
    <>
      <Text c="dimmed">
        An alias is a model name your app uses instead of a provider&apos;s. Call <Code>model=&quot;smart&quot;</Code>{' '}
        and the gateway routes it to its targets: one model, a fallback chain, or a weighted canary split.
      </Text>
      <Text c="dimmed">
        When a distillation run finishes, its student model appears here, and you can point <Code>smart</Code> at it:
        your app keeps calling the same name, without a code change or a redeploy.
      </Text>
    </>
  );
}
