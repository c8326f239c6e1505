import { Badge, Button, Group, Table, Text } from '@mantine/core';
import type { Alias } from '../../api/types.gen';
import { CardTable } from '../../components/CardTable';
import { ConfirmButton } from '../../components/ConfirmButton';
import { formatTargets, strategyLabels } from './aliasFormat';
import { useDeleteAlias } from './useAliases';

interface AliasesTableProps {
  aliases: Alias[];
  onEdit: (alias: Alias) => void;
  onHistory: (name: string) => void;
}

export function AliasesTable({ aliases, onEdit, onHistory }: AliasesTableProps) {
  return (
    <CardTable label="Aliases" columns={['Alias', 'Strategy', 'Targets']} minWidth={640}>
      {aliases.map((alias) => (
        <AliasRow key={alias.name} alias={alias} onEdit={onEdit} onHistory={onHistory} />
      ))}
    </CardTable>
  );
}

interface AliasRowProps {
  alias: Alias;
  onEdit: (alias: Alias) => void;
  onHistory: (name: string) => void;
}

function AliasRow({ alias, onEdit, onHistory }: AliasRowProps) {
  const remove = useDeleteAlias();
  return (
    <Table.Tr aria-label={alias.name}>
      <Table.Td>
        <Text fw={600} ff="monospace">
          {alias.name}
        </Text>
      </Table.Td>
      <Table.Td>
        <Badge variant="light" color={alias.strategy === 'weighted' ? 'grape' : 'blue'}>
          {strategyLabels[alias.strategy]}
        </Badge>
      </Table.Td>
      <Table.Td>
        <Text size="sm" ff="monospace" style={{ overflowWrap: 'anywhere' }}>
          {formatTargets(alias)}
        </Text>
      </Table.Td>
      <Table.Td>
        <Group gap={4} wrap="nowrap">
          <Button variant="subtle" size="compact-sm" onClick={() => onEdit(alias)}>
            Edit
          </Button>
          <Button variant="subtle" size="compact-sm" onClick={() => onHistory(alias.name)}>
            History
          </Button>
          <ConfirmButton
            label="Delete"
            title={`Delete alias ${alias.name}?`}
            onConfirm={() => remove.mutateAsync(alias.name)}
            onOpen={remove.reset}
            pending={remove.isPending}
            error={remove.error}
          >
            Requests for this name stop being routed through it. The deletion is recorded in its history.
          </ConfirmButton>
        </Group>
      </Table.Td>
    </Table.Tr>
  );
}
