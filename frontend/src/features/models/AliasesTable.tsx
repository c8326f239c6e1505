import { Badge, Button, Card, Group, Table, Text, VisuallyHidden } from '@mantine/core';
import type { Alias } from '../../api/types.gen';
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
    <Card withBorder padding={0}>
      <Table.ScrollContainer minWidth={640}>
        <Table aria-label="Aliases" verticalSpacing="sm" horizontalSpacing="md">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Alias</Table.Th>
              <Table.Th>Strategy</Table.Th>
              <Table.Th>Targets</Table.Th>
              <Table.Th>
                <VisuallyHidden>Actions</VisuallyHidden>
              </Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {aliases.map((alias) => (
              <AliasRow key={alias.name} alias={alias} onEdit={onEdit} onHistory={onHistory} />
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Card>
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
