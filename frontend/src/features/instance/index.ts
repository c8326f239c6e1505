export { useInfo } from './useInfo';
