export { TracesPage } from './TracesPage';
export { TraceHealthBanner } from './TraceHealthBanner';
export { formatCost, formatCount } from './traceFormat';
