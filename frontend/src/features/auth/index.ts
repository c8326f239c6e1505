export { TokenRequiredPage } from './TokenRequiredPage';
