export { ProvidersPage } from './ProvidersPage';
