import { Alert, Button, Card, Group, Stack, TextInput, Title } from '@mantine/core';
import { IconDownload } from '@tabler/icons-react';
import { useId, useState, type FormEvent } from 'react';
import { ApiError } from '../../api/client';
import type { DownloadRequest } from '../../api/types.gen';
import { repoShapeError } from './format';
import { useDownloadModel } from './useLocalModels';

/** Downloads a model from the Hugging Face Hub by repository id. */
export function DownloadForm() {
  const titleId = useId();
  const download = useDownloadModel();
  const [repo, setRepo] = useState('');
  const [revision, setRevision] = useState('');
  const [shapeError, setShapeError] = useState<string>();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const problem = repoShapeError(repo);
    setShapeError(problem);
    if (problem) return;
    const input: DownloadRequest = { repo: repo.trim() };
    if (revision.trim()) input.revision = revision.trim();
    download.mutate(input, {
      onSuccess: () => {
        setRepo('');
        setRevision('');
      },
    });
  };

  // The server's refusal of the id goes under the field it is about; other failures below.
  const serverError = download.error;
  const repoError =
    shapeError ??
    (serverError instanceof ApiError && serverError.code === 'invalid_repo' ? serverError.message : undefined);
  const revisionError =
    serverError instanceof ApiError && serverError.code === 'invalid_revision' ? serverError.message : undefined;
  const otherError = serverError && !repoError && !revisionError ? serverError.message : undefined;

  return (
    <Card withBorder padding="lg" component="section" aria-labelledby={titleId}>
      <form onSubmit={submit} noValidate aria-labelledby={titleId}>
        <Stack gap="sm">
          <Title order={2} size="h4" id={titleId}>
            Download a model
          </Title>
          <Group align="flex-start" grow wrap="wrap">
            <TextInput
              label="Repository"
              description="A Hugging Face model id, owner/name. Gated models need HF_TOKEN."
              placeholder="Qwen/Qwen3-0.6B"
              value={repo}
              onChange={(event) => {
                setRepo(event.currentTarget.value);
                setShapeError(undefined);
                download.reset();
              }}
              error={repoError}
              required
              miw={260}
            />
            <TextInput
              label="Revision"
              description="Optional: a branch, tag or commit (default main)."
              placeholder="main"
              value={revision}
              onChange={(event) => {
                setRevision(event.currentTarget.value);
                download.reset();
              }}
              error={revisionError}
              miw={180}
            />
          </Group>
          {otherError ? (
            <Alert color="red" role="alert" title="Could not start the download">
              {otherError}
            </Alert>
          ) : null}
          <Group>
            <Button type="submit" leftSection={<IconDownload size={16} aria-hidden />} loading={download.isPending}>
              Download
            </Button>
          </Group>
        </Stack>
      </form>
    </Card>
  );
}
