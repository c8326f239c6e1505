import {
  IconArrowsExchange,
  IconChartDots3,
  IconCpu,
  IconDatabase,
  IconFlask,
  IconLayoutDashboard,
  IconPlugConnected,
  IconSettings,
  IconTimeline,
  type Icon,
} from '@tabler/icons-react';
import type { ReactNode } from 'react';
import { ClustersPage } from '../features/clusters';
import { DatasetsPage } from '../features/datasets';
import { DistillPage } from '../features/distill';
import { LocalModelsPage } from '../features/engine';
import { ModelsPage } from '../features/models';
import { OverviewPage } from '../features/overview';
import { ProvidersPage } from '../features/providers';
import { SettingsPage } from '../features/settings';
import { TracesPage } from '../features/traces';

export interface Screen {
  path: string;
  label: string;
  icon: Icon;
  element: ReactNode;
}

/** The sidebar, in order; routes are derived from the same list. */
export const screens: Screen[] = [
  { path: '/', label: 'Overview', icon: IconLayoutDashboard, element: <OverviewPage /> },
  { path: '/traces', label: 'Traces', icon: IconTimeline, element: <TracesPage /> },
  { path: '/clusters', label: 'Clusters', icon: IconChartDots3, element: <ClustersPage /> },
  { path: '/datasets', label: 'Datasets', icon: IconDatabase, element: <DatasetsPage /> },
  { path: '/distill', label: 'Distill', icon: IconFlask, element: <DistillPage /> },
  { path: '/models', label: 'Models & Aliases', icon: IconArrowsExchange, element: <ModelsPage /> },
  { path: '/local-models', label: 'Local models', icon: IconCpu, element: <LocalModelsPage /> },
  { path: '/providers', label: 'Providers', icon: IconPlugConnected, element: <ProvidersPage /> },
  { path: '/settings', label: 'Settings', icon: IconSettings, element: <SettingsPage /> },
];
