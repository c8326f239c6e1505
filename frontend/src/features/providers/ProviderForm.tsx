import { Alert, Button, Group, PasswordInput, Select, Stack, TagsInput, TextInput } from '@mantine/core';
import { useState, type FormEvent } from 'react';
import type { Provider, ProviderInput, ProviderType } from '../../api/types.gen';
import { describeType } from './providerFormat';
import { useSaveProvider } from './useProviders';

interface ProviderFormProps {
  types: ProviderType[];
  /** The provider being edited; absent when adding one. */
  editing?: Provider;
  onDone: () => void;
}

/** Mounted fresh each time the dialog opens, so its state starts from `editing`. */
export function ProviderForm({ types, editing, onDone }: ProviderFormProps) {
  const save = useSaveProvider(editing?.name);
  const [type, setType] = useState<string | null>(editing?.type ?? null);
  const [name, setName] = useState(editing?.name ?? '');
  const [nameEdited, setNameEdited] = useState(editing !== undefined);
  const [baseURL, setBaseURL] = useState(editing?.baseURL ?? '');
  const [apiKey, setApiKey] = useState('');
  const [models, setModels] = useState<string[]>(editing?.models ?? []);
  const selected = types.find((t) => t.type === type);

  const pickType = (value: string | null) => {
    setType(value);
    // The name follows the type until the user types one.
    if (!nameEdited) setName(value ?? '');
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!type) return;
    const input: ProviderInput = { name: editing?.name ?? (name.trim() || type), type, models };
    if (baseURL.trim()) input.baseURL = baseURL.trim();
    // Write-only: an empty field sends no key, which keeps the stored one on edit.
    if (apiKey) input.apiKey = apiKey;
    save.mutate(input, { onSuccess: onDone });
  };

  return (
    <form onSubmit={submit} noValidate>
      <Stack gap="md">
        <Select
          label="Type"
          placeholder="Pick a provider type"
          data={types.map((t) => t.type)}
          value={type}
          onChange={pickType}
          description={
            selected ? describeType(selected) : 'OpenAI, Anthropic, a local server, or any OpenAI-compatible API.'
          }
          searchable
          required
          comboboxProps={{ withinPortal: false }}
        />
        <TextInput
          label="Name"
          description='Apps call its models as "name/model".'
          placeholder={type ?? undefined}
          value={name}
          onChange={(event) => {
            setName(event.currentTarget.value);
            setNameEdited(true);
          }}
          disabled={editing !== undefined}
        />
        <TextInput
          label="Base URL"
          description="Optional when the type has a default."
          placeholder={selected?.defaultBaseURL ?? 'https://example.com/v1'}
          value={baseURL}
          onChange={(event) => setBaseURL(event.currentTarget.value)}
        />
        <PasswordInput
          label="API key"
          description="Stored in the app's data directory and never shown again."
          placeholder={editing ? 'Leave empty to keep the current key' : keyPlaceholder(selected)}
          value={apiKey}
          onChange={(event) => setApiKey(event.currentTarget.value)}
          autoComplete="new-password"
        />
        <TagsInput
          label="Models"
          description='Models served by bare name: a request for model="qwen3-8b" goes here. Others still work as "name/model".'
          placeholder="Type a model and press Enter"
          value={models}
          onChange={setModels}
          comboboxProps={{ withinPortal: false }}
        />
        {save.error ? (
          <Alert color="red" role="alert" title="Could not save the provider">
            {save.error.message}
          </Alert>
        ) : null}
        <Group justify="flex-end">
          <Button variant="default" onClick={onDone}>
            Cancel
          </Button>
          <Button type="submit" loading={save.isPending} disabled={!type}>
            {editing ? 'Save changes' : 'Save provider'}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

function keyPlaceholder(type: ProviderType | undefined): string {
  if (!type) return '';
  if (!type.keyRequired) return 'Optional';
  return type.keyEnv ? `Optional when $${type.keyEnv} is set` : 'Required';
}
