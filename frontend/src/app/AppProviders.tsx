import { MantineProvider } from '@mantine/core';
import { QueryClientProvider, type QueryClient } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { EventStreamProvider, type ConnectEvents } from '../features/events';
import { theme } from './theme';

interface AppProvidersProps {
  queryClient: QueryClient;
  /** Tests inject a fake; the browser's EventSource is the default. */
  connectEvents?: ConnectEvents;
  /** "test" turns off Mantine's transitions and portals, so tests see dialogs and dropdowns at once. */
  mantineEnv?: 'default' | 'test';
  children: ReactNode;
}

export function AppProviders({ queryClient, connectEvents, mantineEnv, children }: AppProvidersProps) {
  return (
    // "auto" follows the OS until the user picks a scheme; Mantine stores that choice in localStorage.
    <MantineProvider theme={theme} defaultColorScheme="auto" env={mantineEnv}>
      <QueryClientProvider client={queryClient}>
        <EventStreamProvider connect={connectEvents}>{children}</EventStreamProvider>
      </QueryClientProvider>
    </MantineProvider>
  );
}
