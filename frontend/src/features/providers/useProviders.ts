import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from '../../api/client';
import { queryKeys } from '../../api/queryKeys';
import type { Provider, ProviderInput } from '../../api/types.gen';

export function useProviders() {
  return useQuery({
    queryKey: queryKeys.providers,
    queryFn: ({ signal }) => api.providers(signal),
  });
}

export function useProviderTypes() {
  return useQuery({
    queryKey: queryKeys.providerTypes,
    queryFn: ({ signal }) => api.providerTypes(signal),
    // The catalog is compiled into the server.
    staleTime: Infinity,
  });
}

/** Every provider change answers the new list; it replaces the cache, then the list is refetched. */
function useProviderChange<V>(change: (variables: V) => Promise<Provider[]>) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: change,
    onSuccess: (list) => {
      queryClient.setQueryData(queryKeys.providers, list);
      return queryClient.invalidateQueries({ queryKey: queryKeys.providers });
    },
  });
}

/** Creates a provider, or updates the one named `editing`. */
export function useSaveProvider(editing: string | undefined) {
  return useProviderChange((input: ProviderInput) =>
    editing === undefined ? api.createProvider(input) : api.updateProvider(editing, input),
  );
}

export function useDeleteProvider() {
  return useProviderChange((name: string) => api.deleteProvider(name));
}

/** Each row keeps its own check result; checking changes nothing on the server but the stats. */
export function useCheckProvider(name: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => api.checkProvider(name),
    onSettled: () => queryClient.invalidateQueries({ queryKey: queryKeys.providers }),
  });
}
