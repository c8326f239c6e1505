import { Card, Table, VisuallyHidden } from '@mantine/core';
import type { Provider } from '../../api/types.gen';
import { PROVIDER_COLUMNS, ProviderRow } from './ProviderRow';

interface ProvidersTableProps {
  providers: Provider[];
  onEdit: (provider: Provider) => void;
}

export function ProvidersTable({ providers, onEdit }: ProvidersTableProps) {
  return (
    <Card withBorder padding={0}>
      <Table.ScrollContainer minWidth={900}>
        <Table aria-label="Providers" verticalSpacing="sm" horizontalSpacing="md">
          <Table.Thead>
            <Table.Tr>
              {PROVIDER_COLUMNS.map((column, i) => (
                <Table.Th key={column}>
                  {i === PROVIDER_COLUMNS.length - 1 ? <VisuallyHidden>{column}</VisuallyHidden> : column}
                </Table.Th>
              ))}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {providers.map((provider) => (
              <ProviderRow key={provider.name} provider={provider} onEdit={onEdit} />
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Card>
  );
}
