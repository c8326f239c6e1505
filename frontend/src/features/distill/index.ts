export { DistillPage } from './DistillPage';
