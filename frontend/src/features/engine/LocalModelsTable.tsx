import { Badge, Button, Code, Group, Table, Text } from '@mantine/core';
import type { LocalModel, LocalStudent } from '../../api/types.gen';
import { CardTable } from '../../components/CardTable';
import { ConfirmButton } from '../../components/ConfirmButton';
import { formatBytes, formatParams } from './format';
import { useDeleteLocalModel, useDownloadModel } from './useLocalModels';

const noShrink = { minWidth: 'max-content' } as const;

/** What a model's status column says, and in which colour. */
function modelStatus(model: LocalModel): { label: string; color: string } {
  if (model.downloading) return { label: 'Downloading', color: 'blue' };
  if (model.ready) return { label: 'Ready', color: 'teal' };
  if (model.complete) return { label: 'Unsupported', color: 'orange' };
  return { label: 'Incomplete', color: 'yellow' };
}

function LoadedCell({ loaded }: { loaded: boolean }) {
  return loaded ? (
    <Badge variant="light" color="grape" style={noShrink}>
      Loaded
    </Badge>
  ) : (
    <Text size="sm" c="dimmed">
      No
    </Text>
  );
}

interface ModelsTableProps {
  models: LocalModel[];
  /** The gateway provider that serves them ("local"). */
  provider: string;
}

export function LocalModelsTable({ models, provider }: ModelsTableProps) {
  return (
    <CardTable label="Local models" columns={['Model', 'Size', 'Status', 'Loaded']} minWidth={760}>
      {models.map((model) => (
        <ModelRow key={model.name} model={model} provider={provider} />
      ))}
    </CardTable>
  );
}

function ModelRow({ model, provider }: { model: LocalModel; provider: string }) {
  const remove = useDeleteLocalModel();
  const resume = useDownloadModel();
  const status = modelStatus(model);
  const details = [model.family, formatParams(model.params)].filter(Boolean).join(' · ');
  return (
    <Table.Tr aria-label={model.name}>
      <Table.Td>
        <Text fw={600}>{model.repo}</Text>
        <Code>
          {provider}/{model.name}
        </Code>
        {details ? (
          <Text size="xs" c="dimmed">
            {details}
          </Text>
        ) : null}
      </Table.Td>
      <Table.Td>
        <Text size="sm" style={{ whiteSpace: 'nowrap' }}>
          {formatBytes(model.sizeBytes)}
        </Text>
      </Table.Td>
      <Table.Td>
        <Badge variant="light" color={status.color} style={noShrink}>
          {status.label}
        </Badge>
        {model.problem && !model.downloading ? (
          <Text size="xs" c="dimmed" mt={4}>
            {model.problem}
          </Text>
        ) : null}
        {resume.error ? (
          <Text size="xs" c="red" role="alert" mt={4}>
            {resume.error.message}
          </Text>
        ) : null}
      </Table.Td>
      <Table.Td>
        <LoadedCell loaded={model.loaded} />
      </Table.Td>
      <Table.Td>
        <Group gap={4} wrap="nowrap" justify="flex-end">
          {!model.complete && !model.downloading ? (
            <Button
              variant="subtle"
              size="compact-sm"
              aria-label={`Resume download of ${model.repo}`}
              loading={resume.isPending}
              onClick={() =>
                resume.mutate(model.revision ? { repo: model.repo, revision: model.revision } : { repo: model.repo })
              }
            >
              Resume
            </Button>
          ) : null}
          <ConfirmButton
            label="Delete"
            ariaLabel={`Delete ${model.name}`}
            title={`Delete ${model.repo}?`}
            onConfirm={() => remove.mutateAsync(model.name)}
            onOpen={remove.reset}
            pending={remove.isPending}
            error={remove.error}
            buttonProps={{ disabled: model.downloading }}
          >
            {formatBytes(model.sizeBytes)} of files are deleted from this machine, and requests for {provider}/
            {model.name} stop working.{model.loaded ? ' The model is unloaded from memory first.' : ''} Downloading it
            again brings it back.
          </ConfirmButton>
        </Group>
      </Table.Td>
    </Table.Tr>
  );
}

export function StudentsTable({ students, provider }: { students: LocalStudent[]; provider: string }) {
  return (
    <CardTable label="Students" columns={['Student', 'Base model', 'Status', 'Loaded']} minWidth={640}>
      {students.map((student) => (
        <StudentRow key={student.name} student={student} provider={provider} />
      ))}
    </CardTable>
  );
}

function StudentRow({ student, provider }: { student: LocalStudent; provider: string }) {
  const remove = useDeleteLocalModel();
  return (
    <Table.Tr aria-label={student.name}>
      <Table.Td>
        <Text fw={600}>{student.name}</Text>
        <Code>
          {provider}/{student.name}
        </Code>
        {student.description ? (
          <Text size="xs" c="dimmed">
            {student.description}
          </Text>
        ) : null}
      </Table.Td>
      <Table.Td>
        <Text size="sm">{student.base}</Text>
      </Table.Td>
      <Table.Td>
        <Badge variant="light" color={student.ready ? 'teal' : 'yellow'} style={noShrink}>
          {student.ready ? 'Ready' : 'Not ready'}
        </Badge>
        {student.problem ? (
          <Text size="xs" c="dimmed" mt={4}>
            {student.problem}
          </Text>
        ) : null}
      </Table.Td>
      <Table.Td>
        <LoadedCell loaded={student.loaded} />
      </Table.Td>
      <Table.Td>
        <Group justify="flex-end">
          <ConfirmButton
            label="Delete"
            ariaLabel={`Delete ${student.name}`}
            title={`Delete student ${student.name}?`}
            onConfirm={() => remove.mutateAsync(student.name)}
            onOpen={remove.reset}
            pending={remove.isPending}
            error={remove.error}
          >
            Its adapter is deleted; the base model {student.base} stays. Aliases that point at {provider}/{student.name}{' '}
            stop working until they are re-pointed.
          </ConfirmButton>
        </Group>
      </Table.Td>
    </Table.Tr>
  );
}
