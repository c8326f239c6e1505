export { LocalModelsPage } from './LocalModelsPage';
