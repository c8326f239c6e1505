import { ActionIcon, Autocomplete, Button, Group, NumberInput, Stack } from '@mantine/core';
import { IconPlus, IconTrash } from '@tabler/icons-react';
import type { AliasStrategy } from '../../api/types.gen';
import { sharePercents } from './aliasFormat';

export interface TargetRow {
  /** Stable React key; rows can be removed from the middle. */
  id: number;
  model: string;
  /** As NumberInput gives it: a number, or the text while it is being typed ("" when empty). */
  weight: number | string;
}

/** The weight to send: 0 for an empty field. */
export const weightOf = (row: TargetRow) => (typeof row.weight === 'number' ? row.weight : Number(row.weight) || 0);

let lastRowId = 0;
export function newTargetRow(model = '', weight: number = DEFAULT_WEIGHT): TargetRow {
  lastRowId += 1;
  return { id: lastRowId, model, weight };
}
const DEFAULT_WEIGHT = 50;

interface TargetRowsProps {
  rows: TargetRow[];
  onChange: (rows: TargetRow[]) => void;
  strategy: AliasStrategy;
  /** "provider/model" names to suggest. */
  suggestions: string[];
}

/** The alias's targets, one row each: a model and, for a weighted alias, its weight. */
export function TargetRows({ rows, onChange, strategy, suggestions }: TargetRowsProps) {
  const weighted = strategy === 'weighted';
  const shares = sharePercents(rows.map((row) => ({ weight: weightOf(row) })));
  const update = (id: number, change: Partial<TargetRow>) =>
    onChange(rows.map((row) => (row.id === id ? { ...row, ...change } : row)));

  return (
    <Stack gap="xs">
      {rows.map((row, i) => (
        <Group key={row.id} gap="xs" align="flex-start" wrap="nowrap">
          <Autocomplete
            label={`Target ${i + 1} model`}
            placeholder="provider/model"
            data={suggestions}
            value={row.model}
            onChange={(model) => update(row.id, { model })}
            flex={1}
            comboboxProps={{ withinPortal: false }}
          />
          {weighted ? (
            <NumberInput
              label={`Target ${i + 1} weight`}
              description={`${shares[i]}% of requests`}
              value={row.weight}
              onChange={(weight) => update(row.id, { weight })}
              min={0}
              allowDecimal={false}
              allowNegative={false}
              w={150}
            />
          ) : null}
          <ActionIcon
            variant="subtle"
            color="gray"
            mt={26}
            aria-label={`Remove target ${i + 1}`}
            disabled={rows.length === 1}
            onClick={() => onChange(rows.filter((other) => other.id !== row.id))}
          >
            <IconTrash size={16} aria-hidden />
          </ActionIcon>
        </Group>
      ))}
      <Group>
        <Button
          variant="subtle"
          size="compact-sm"
          leftSection={<IconPlus size={14} aria-hidden />}
          onClick={() => onChange([...rows, newTargetRow()])}
        >
          Add target
        </Button>
      </Group>
    </Stack>
  );
}
