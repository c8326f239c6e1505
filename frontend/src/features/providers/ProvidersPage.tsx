import { Button, Loader, Modal } from '@mantine/core';
import { IconPlus } from '@tabler/icons-react';
import { lazy, Suspense, useState } from 'react';
import type { Provider } from '../../api/types.gen';
import { Page } from '../../components/Page';
import { QueryResult } from '../../components/QueryResult';
import { ProvidersEmptyState } from './ProvidersEmptyState';
import { ProvidersTable } from './ProvidersTable';
import { useProviders, useProviderTypes } from './useProviders';

// The form's inputs (combobox, tags, password) load with the first dialog, not with the app.
const ProviderForm = lazy(() => import('./ProviderForm').then((m) => ({ default: m.ProviderForm })));

/** null: closed; "add": a new provider; a provider: editing it. */
type Dialog = null | 'add' | Provider;

export function ProvidersPage() {
  const providers = useProviders();
  const types = useProviderTypes();
  const [dialog, setDialog] = useState<Dialog>(null);
  const editing = dialog !== null && dialog !== 'add' ? dialog : undefined;
  const close = () => setDialog(null);

  const addButton = (
    <Button leftSection={<IconPlus size={16} aria-hidden />} onClick={() => setDialog('add')}>
      Add provider
    </Button>
  );
  const hasProviders = (providers.data?.length ?? 0) > 0;

  return (
    <Page
      title="Providers"
      description="The upstream APIs the gateway forwards requests to."
      actions={hasProviders ? addButton : undefined}
    >
      <QueryResult query={providers} what="providers">
        {(list) =>
          list.length > 0 ? (
            <ProvidersTable providers={list} onEdit={setDialog} />
          ) : (
            <ProvidersEmptyState action={addButton} />
          )
        }
      </QueryResult>
      <Modal
        opened={dialog !== null}
        onClose={close}
        title={editing ? `Edit provider ${editing.name}` : 'Add provider'}
        size="lg"
        closeButtonProps={{ 'aria-label': 'Close' }}
      >
        <QueryResult query={types} what="provider types">
          {(list) => (
            <Suspense fallback={<Loader size="sm" aria-label="Loading the form" />}>
              <ProviderForm key={editing?.name ?? 'add'} types={list} editing={editing} onDone={close} />
            </Suspense>
          )}
        </QueryResult>
      </Modal>
    </Page>
  );
}
