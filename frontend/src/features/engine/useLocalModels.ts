import { useMutation, useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';
import { api } from '../../api/client';
import { queryKeys } from '../../api/queryKeys';
import type { DownloadRequest, Engine, Job, LocalModels } from '../../api/types.gen';
import { useJobEvents } from '../events';

export function useEngine() {
  return useQuery({ queryKey: queryKeys.engine, queryFn: ({ signal }) => api.engine(signal) });
}

export function useLocalModels() {
  return useQuery({ queryKey: queryKeys.localModels, queryFn: ({ signal }) => api.localModels(signal) });
}

/** The downloads list with `job` in it: replaced by id, added when new, removed once done. */
function withJob(downloads: Job[], job: Job): Job[] {
  if (job.state === 'done') return downloads.filter((d) => d.id !== job.id);
  if (!downloads.some((d) => d.id === job.id)) return [...downloads, job];
  return downloads.map((d) => (d.id === job.id ? job : d));
}

/** Applies a download job to the cached list; refetches when the models themselves change. */
function applyDownload(queryClient: QueryClient, job: Job) {
  const list = queryClient.getQueryData<LocalModels>(queryKeys.localModels);
  const known = list?.downloads.find((d) => d.id === job.id);
  queryClient.setQueryData<LocalModels>(queryKeys.localModels, (prev) =>
    prev ? { ...prev, downloads: withJob(prev.downloads, job) } : prev,
  );
  // A new download makes a model folder; an ended one changes its status.
  if (!known || known.state !== job.state || job.state !== 'running') {
    void queryClient.invalidateQueries({ queryKey: queryKeys.localModels });
  }
}

/** Applies a GPU runtime install job to the cached engine status. */
function applyInstall(queryClient: QueryClient, job: Job) {
  queryClient.setQueryData<Engine>(queryKeys.engine, (prev) =>
    prev ? { ...prev, install: job.state === 'done' ? undefined : job } : prev,
  );
  if (job.state !== 'running') void queryClient.invalidateQueries({ queryKey: queryKeys.engine });
}

/** Keeps the downloads and the install progress live from the server's "job" events. */
export function useLiveJobs() {
  const queryClient = useQueryClient();
  useJobEvents((job) => {
    if (job.kind === 'model.download') applyDownload(queryClient, job);
    else if (job.kind === 'runtime.install') applyInstall(queryClient, job);
  });
}

export function useDownloadModel() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (input: DownloadRequest) => api.downloadModel(input),
    onSuccess: (job) => applyDownload(queryClient, job),
  });
}

export function useCancelDownload() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.cancelDownload(id),
    onSuccess: (job) => applyDownload(queryClient, job),
  });
}

export function useDismissDownload() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.dismissJob(id),
    onSuccess: (_, id) => {
      queryClient.setQueryData<LocalModels>(queryKeys.localModels, (prev) =>
        prev ? { ...prev, downloads: prev.downloads.filter((d) => d.id !== id) } : prev,
      );
      return queryClient.invalidateQueries({ queryKey: queryKeys.localModels });
    },
  });
}

export function useDeleteLocalModel() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => api.deleteLocalModel(name),
    onSuccess: (list) => {
      queryClient.setQueryData(queryKeys.localModels, list);
      return queryClient.invalidateQueries({ queryKey: queryKeys.localModels });
    },
  });
}

export function useInstallRuntime() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => api.installRuntime(),
    onSuccess: (job) => applyInstall(queryClient, job),
  });
}

export function useCancelInstall() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => api.cancelJob(id),
    onSuccess: (job) => applyInstall(queryClient, job),
  });
}

export function useRemoveRuntime() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => api.removeRuntime(),
    onSuccess: (engine) => {
      queryClient.setQueryData(queryKeys.engine, engine);
      return queryClient.invalidateQueries({ queryKey: queryKeys.engine });
    },
  });
}
