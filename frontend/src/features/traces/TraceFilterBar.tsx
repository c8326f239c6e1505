import {
  Badge,
  Button,
  Collapse,
  Group,
  MultiSelect,
  NumberInput,
  SegmentedControl,
  Select,
  SimpleGrid,
  Stack,
  TagsInput,
  TextInput,
} from '@mantine/core';
import { useDebouncedCallback, useDisclosure } from '@mantine/hooks';
import { IconAdjustmentsHorizontal, IconSearch } from '@tabler/icons-react';
import { useState } from 'react';
import {
  countActiveFilters,
  isMetaPair,
  NUMBER_FILTERS,
  TRACE_RANGES,
  type NumberFilter,
  type TraceFilters,
  type TraceRange,
} from './filters';

/** Typing waits this long before the URL (and so the query) changes. */
export const FILTER_DEBOUNCE_MS = 350;

const rangeLabels: Record<TraceRange, string> = { '1h': '1h', '24h': '24h', '7d': '7d', '30d': '30d', all: 'All' };

const numberLabels: Record<NumberFilter, string> = {
  minCost: 'Min cost (USD)',
  maxCost: 'Max cost (USD)',
  minLatency: 'Min latency (ms)',
  maxLatency: 'Max latency (ms)',
  minTokens: 'Min tokens',
  maxTokens: 'Max tokens',
};

export interface FilterOptions {
  model: string[];
  provider: string[];
  alias: string[];
}

interface TraceFilterBarProps {
  filters: TraceFilters;
  options: FilterOptions;
  onChange: (patch: Partial<TraceFilters>) => void;
  onClear: () => void;
}

export function TraceFilterBar({ filters, options, onChange, onClear }: TraceFilterBarProps) {
  const moreCount =
    NUMBER_FILTERS.filter((name) => filters[name] !== undefined).length + (filters.meta.length > 0 ? 1 : 0);
  const [moreOpen, { toggle: toggleMore }] = useDisclosure(moreCount > 0);
  const active = countActiveFilters(filters);
  const pickerProps = { searchable: true, clearable: true, comboboxProps: { withinPortal: false }, miw: 160 } as const;

  return (
    <Stack gap="sm" component="section" aria-label="Filters">
      <Group gap="sm" align="flex-end" wrap="wrap">
        <SearchInput value={filters.q ?? ''} onCommit={(q) => onChange({ q: q.trim() || undefined })} />
        <SegmentedControl
          aria-label="Time range"
          value={filters.range}
          onChange={(value) => onChange({ range: value as TraceRange })}
          data={TRACE_RANGES.map((range) => ({ value: range, label: rangeLabels[range] }))}
        />
      </Group>
      <Group gap="sm" align="flex-end" wrap="wrap">
        <MultiSelect
          label="Model"
          placeholder={filters.model.length ? undefined : 'Any model'}
          data={withSelected(options.model, filters.model)}
          value={filters.model}
          onChange={(model) => onChange({ model })}
          {...pickerProps}
        />
        <MultiSelect
          label="Provider"
          placeholder={filters.provider.length ? undefined : 'Any provider'}
          data={withSelected(options.provider, filters.provider)}
          value={filters.provider}
          onChange={(provider) => onChange({ provider })}
          {...pickerProps}
        />
        <MultiSelect
          label="Alias"
          placeholder={filters.alias.length ? undefined : 'Any alias'}
          data={withSelected(options.alias, filters.alias)}
          value={filters.alias}
          onChange={(alias) => onChange({ alias })}
          nothingFoundMessage="No alias was called"
          {...pickerProps}
        />
        <Select
          label="Status"
          data={[
            { value: 'any', label: 'Any status' },
            { value: 'ok', label: 'Succeeded' },
            { value: 'error', label: 'Failed' },
          ]}
          value={filters.status ?? 'any'}
          onChange={(value) => onChange({ status: value === 'ok' || value === 'error' ? value : undefined })}
          allowDeselect={false}
          comboboxProps={{ withinPortal: false }}
          w={140}
        />
        <Button
          variant="default"
          leftSection={<IconAdjustmentsHorizontal size={16} aria-hidden />}
          rightSection={
            moreCount > 0 ? (
              <Badge size="sm" circle aria-label={`${moreCount} set`}>
                {moreCount}
              </Badge>
            ) : null
          }
          aria-expanded={moreOpen}
          onClick={toggleMore}
        >
          More filters
        </Button>
        {active > 0 ? (
          <Button variant="subtle" onClick={onClear}>
            Clear filters
          </Button>
        ) : null}
      </Group>
      <Collapse in={moreOpen} transitionDuration={0}>
        <SimpleGrid cols={{ base: 2, sm: 3, md: 6 }} spacing="sm">
          {NUMBER_FILTERS.map((name) => (
            <RangeInput
              key={name}
              label={numberLabels[name]}
              value={filters[name]}
              decimals={name.endsWith('Cost')}
              onCommit={(value) => onChange({ [name]: value })}
            />
          ))}
        </SimpleGrid>
        <MetadataInput value={filters.meta} onChange={(meta) => onChange({ meta })} />
      </Collapse>
    </Stack>
  );
}

/** Options plus whatever the URL selected, so a shared link shows its values even before they load. */
function withSelected(options: string[], selected: string[]): string[] {
  return [...new Set([...options, ...selected])].sort();
}

/** Local state that follows `value` and commits after a pause in typing. */
function useDraft<T>(value: T, commit: (value: T) => void) {
  const [draft, setDraft] = useState(value);
  const [seen, setSeen] = useState(value);
  const debounced = useDebouncedCallback(commit, FILTER_DEBOUNCE_MS);
  // The value changed elsewhere (Clear filters, back button): show it.
  if (!Object.is(value, seen)) {
    setSeen(value);
    setDraft(value);
    debounced.cancel();
  }
  const update = (next: T) => {
    setDraft(next);
    debounced(next);
  };
  return [draft, update, debounced.flush] as const;
}

function SearchInput({ value, onCommit }: { value: string; onCommit: (value: string) => void }) {
  const [draft, setDraft, flush] = useDraft(value, onCommit);
  return (
    <TextInput
      label="Search"
      placeholder="Words in prompts and answers"
      leftSection={<IconSearch size={16} aria-hidden />}
      value={draft}
      onChange={(event) => setDraft(event.currentTarget.value)}
      onKeyDown={(event) => event.key === 'Enter' && flush()}
      type="search"
      flex={1}
      miw={240}
    />
  );
}

interface RangeInputProps {
  label: string;
  value: number | undefined;
  decimals: boolean;
  onCommit: (value: number | undefined) => void;
}

function RangeInput({ label, value, decimals, onCommit }: RangeInputProps) {
  const [draft, setDraft] = useDraft<number | string>(value ?? '', (next) =>
    onCommit(typeof next === 'number' && Number.isFinite(next) ? next : undefined),
  );
  return (
    <NumberInput
      label={label}
      value={draft}
      onChange={setDraft}
      min={0}
      decimalScale={decimals ? 6 : 0}
      allowNegative={false}
      hideControls
    />
  );
}

function MetadataInput({ value, onChange }: { value: string[]; onChange: (value: string[]) => void }) {
  const [error, setError] = useState<string | null>(null);
  return (
    <TagsInput
      mt="sm"
      label="Metadata"
      description="key=value pairs, as sent in the X-OpenTracy-Metadata header or the body's metadata; all must match"
      placeholder="team=search, then Enter"
      value={value}
      error={error}
      onChange={(tags) => {
        const valid = tags.filter(isMetaPair);
        setError(valid.length < tags.length ? 'Write each pair as key=value' : null);
        onChange(valid);
      }}
      clearable
      comboboxProps={{ withinPortal: false }}
    />
  );
}
