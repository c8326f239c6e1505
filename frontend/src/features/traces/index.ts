export { TracesPage } from './TracesPage';
