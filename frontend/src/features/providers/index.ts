export { ProvidersPage } from './ProvidersPage';
export { useProviders } from './useProviders';
