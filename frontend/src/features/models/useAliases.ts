import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api, type AliasInput } from '../../api/client';
import { queryKeys } from '../../api/queryKeys';

export function useAliases() {
  return useQuery({
    queryKey: queryKeys.aliases,
    queryFn: ({ signal }) => api.aliases(signal),
  });
}

/** Newest change first. */
export function useAliasHistory(name: string) {
  return useQuery({
    queryKey: queryKeys.aliasHistory(name),
    queryFn: ({ signal }) => api.aliasHistory(name, signal),
  });
}

/** Every alias change refreshes the list and the histories. */
function useAliasChange<V, R>(change: (variables: V) => Promise<R>) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: change,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.aliases }),
  });
}

export function useSaveAlias() {
  return useAliasChange(({ name, input }: { name: string; input: AliasInput }) => api.putAlias(name, input));
}

export function useDeleteAlias() {
  return useAliasChange((name: string) => api.deleteAlias(name));
}

export function useRollbackAlias(name: string) {
  return useAliasChange((version: number) => api.rollbackAlias(name, version));
}
