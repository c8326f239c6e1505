import { Alert, Button, Group, SegmentedControl, Stack, Text, TextInput } from '@mantine/core';
import { useId, useState, type FormEvent } from 'react';
import type { AliasInput } from '../../api/client';
import type { Alias, AliasStrategy } from '../../api/types.gen';
import { newTargetRow, TargetRows, weightOf, type TargetRow } from './TargetRows';
import { useSaveAlias } from './useAliases';

interface AliasFormProps {
  /** The alias being edited; absent for a new one. */
  editing?: Alias;
  suggestions: string[];
  onDone: () => void;
}

const strategyHelp: Record<AliasStrategy, string> = {
  fallback: 'Tries the targets in order: when one fails, the next one answers.',
  weighted: 'Each request goes to one target picked by weight (a canary split); the others are fallbacks.',
};

function initialRows(editing: Alias | undefined): TargetRow[] {
  if (!editing) return [newTargetRow()];
  return editing.targets.map((t) => newTargetRow(t.model, t.weight));
}

/** Mounted fresh each time the dialog opens, so its state starts from `editing`. */
export function AliasForm({ editing, suggestions, onDone }: AliasFormProps) {
  const save = useSaveAlias();
  const [name, setName] = useState(editing?.name ?? '');
  const [nameError, setNameError] = useState<string | null>(null);
  const [strategy, setStrategy] = useState<AliasStrategy>(editing?.strategy ?? 'fallback');
  const [rows, setRows] = useState(() => initialRows(editing));
  const strategyLabelId = useId();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const aliasName = name.trim();
    if (!aliasName) {
      setNameError('Give the alias a name, e.g. smart');
      return;
    }
    const input: AliasInput = {
      strategy,
      targets: rows.map((row) =>
        strategy === 'weighted' ? { model: row.model.trim(), weight: weightOf(row) } : { model: row.model.trim() },
      ),
    };
    save.mutate({ name: aliasName, input }, { onSuccess: onDone });
  };

  return (
    <form onSubmit={submit} noValidate>
      <Stack gap="md">
        <TextInput
          label="Name"
          description='What apps send as the model, e.g. model="smart".'
          placeholder="smart"
          value={name}
          onChange={(event) => {
            setName(event.currentTarget.value);
            setNameError(null);
          }}
          error={nameError}
          disabled={editing !== undefined}
          data-autofocus
        />
        <Stack gap={4}>
          <Text size="sm" fw={500} id={strategyLabelId}>
            Strategy
          </Text>
          <SegmentedControl
            aria-labelledby={strategyLabelId}
            value={strategy}
            onChange={(value) => setStrategy(value as AliasStrategy)}
            data={[
              { value: 'fallback', label: 'Fallback' },
              { value: 'weighted', label: 'Weighted' },
            ]}
          />
          <Text size="xs" c="dimmed">
            {strategyHelp[strategy]}
          </Text>
        </Stack>
        <TargetRows rows={rows} onChange={setRows} strategy={strategy} suggestions={suggestions} />
        {save.error ? (
          <Alert color="red" role="alert" title="Could not save the alias">
            {save.error.message}
          </Alert>
        ) : null}
        <Group justify="flex-end">
          <Button variant="default" onClick={onDone}>
            Cancel
          </Button>
          <Button type="submit" loading={save.isPending}>
            {editing ? 'Save changes' : 'Create alias'}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
