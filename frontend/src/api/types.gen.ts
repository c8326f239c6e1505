/* Generated from backend/api by make generate. Do not edit. */

export type Shell = "desktop" | "server";
export type KeySource = "generated" | "config" | "flag" | "env";
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "EventType".
 */
export type EventType = "hello" | "reset" | "server.stats" | "trace" | "job";
export type AliasStrategy = "fallback" | "weighted";
export type EnginePlanStatus = "gpu" | "cpu" | "no-gpu" | "needs-runtime" | "unusable" | "error";
export type JobKind = "model.download" | "runtime.install";
export type JobState = "running" | "done" | "failed" | "canceled" | "interrupted";

export interface ApiTypes {
  Info?: Info;
  ErrorResponse?: ErrorResponse;
  Hello?: Hello;
  ServerStats?: ServerStats;
  EventType?: EventType;
  Provider?: Provider;
  ProviderCheck?: ProviderCheck;
  ProviderInput?: ProviderInput;
  ProviderType?: ProviderType;
  Alias?: Alias;
  AliasChange?: AliasChange;
  RollbackRequest?: RollbackRequest;
  Stats?: Stats;
  TracePage?: TracePage;
  TraceSummary?: TraceSummary;
  TraceDetail?: TraceDetail;
  TraceAggregates?: TraceAggregates;
  ImportResult?: ImportResult;
  Engine?: Engine;
  LocalModels?: LocalModels;
  DownloadRequest?: DownloadRequest;
  Job?: Job;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "Info".
 */
export interface Info {
  version: string;
  shell: Shell;
  gateway: GatewayInfo;
  dataDir: string;
  configFile?: string;
  startedAt: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "GatewayInfo".
 */
export interface GatewayInfo {
  baseURL: string;
  anthropicBaseURL: string;
  key: string;
  keySource: KeySource;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "ErrorResponse".
 */
export interface ErrorResponse {
  error: ErrorBody;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "ErrorBody".
 */
export interface ErrorBody {
  message: string;
  type: string;
  code?: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "Hello".
 */
export interface Hello {
  version: string;
  startedAt: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "ServerStats".
 */
export interface ServerStats {
  time: string;
  uptimeSeconds: number;
  rssBytes: number;
  heapBytes: number;
  goroutines: number;
  eventClients: number;
  eventsEvicted: number;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "Provider".
 */
export interface Provider {
  name: string;
  type: string;
  baseURL: string;
  keySet: boolean;
  keyFrom: string;
  models: string[];
  source: string;
  stats: ProviderStats;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "ProviderStats".
 */
export interface ProviderStats {
  attempts: number;
  failures: number;
  p50Millis: number;
  p95Millis: number;
  successRate: number;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "ProviderCheck".
 */
export interface ProviderCheck {
  ok: boolean;
  latencyMillis: number;
  message: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "ProviderInput".
 */
export interface ProviderInput {
  name: string;
  type: string;
  baseURL?: string;
  apiKey?: string;
  models?: string[];
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "ProviderType".
 */
export interface ProviderType {
  type: string;
  defaultBaseURL?: string;
  keyEnv?: string;
  keyRequired: boolean;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "Alias".
 */
export interface Alias {
  name: string;
  strategy: AliasStrategy;
  targets: AliasTarget[];
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "AliasTarget".
 */
export interface AliasTarget {
  model: string;
  weight?: number;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "AliasChange".
 */
export interface AliasChange {
  version: number;
  name: string;
  alias?: Alias;
  at: string;
  by: string;
  action: string;
  from?: number;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "RollbackRequest".
 */
export interface RollbackRequest {
  version: number;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "Stats".
 */
export interface Stats {
  traces: TraceStats;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "TraceStats".
 */
export interface TraceStats {
  durable: boolean;
  recorded: number;
  written: number;
  replayed: number;
  queued: number;
  spilled: number;
  journalBytes: number;
  retries: number;
  dropped: number;
  rejected: number;
  storeDown: boolean;
  lastError?: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "TracePage".
 */
export interface TracePage {
  traces: TraceSummary[];
  nextCursor?: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "TraceSummary".
 */
export interface TraceSummary {
  id: string;
  startedAt: string;
  endpoint: string;
  requestedModel: string;
  alias?: string;
  model: string;
  provider: string;
  status: number;
  error?: string;
  stream: boolean;
  latencyMs: number;
  ttftMs: number;
  usage: TokenUsage;
  costUsd: number;
  preview: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "TokenUsage".
 */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "TraceDetail".
 */
export interface TraceDetail {
  id: string;
  startedAt: string;
  endpoint: string;
  requestedModel: string;
  alias?: string;
  model: string;
  provider: string;
  status: number;
  error?: string;
  stream: boolean;
  latencyMs: number;
  ttftMs: number;
  usage: TokenUsage;
  costUsd: number;
  preview: string;
  finishReason?: string;
  attempts: TraceAttempt[];
  input?: unknown;
  output?: unknown;
  tools?: unknown;
  toolCalls?: unknown;
  metadata: {
    [k: string]: string;
  };
  user?: string;
  userAgent?: string;
  costBreakdown?: CostBreakdown;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "TraceAttempt".
 */
export interface TraceAttempt {
  provider: string;
  model: string;
  startedAt: string;
  latencyMs: number;
  status: number;
  error?: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "CostBreakdown".
 */
export interface CostBreakdown {
  input: number;
  cachedInput: number;
  cacheWrite: number;
  output: number;
  reasoning: number;
  total: number;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "TraceAggregates".
 */
export interface TraceAggregates {
  series: TraceSeries[];
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "TraceSeries".
 */
export interface TraceSeries {
  group: string;
  buckets: TraceBucket[];
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "TraceBucket".
 */
export interface TraceBucket {
  start: string;
  requests: number;
  errors: number;
  costUsd: number;
  promptTokens: number;
  completionTokens: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  latencyP99Ms: number;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "ImportResult".
 */
export interface ImportResult {
  imported: number;
  skipped: number;
  errors: ImportError[];
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "ImportError".
 */
export interface ImportError {
  line: number;
  message: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "Engine".
 */
export interface Engine {
  gpu: GPU;
  plan: EnginePlan;
  configBackend: string;
  runtime?: GPURuntime;
  runtimeVersion: string;
  runtimeDownloadBytes: number;
  wheelMirror: boolean;
  installBlocked?: string;
  install?: Job;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "GPU".
 */
export interface GPU {
  present: boolean;
  reason?: string;
  driver?: string;
  cuda?: string;
  devices: GPUDevice[];
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "GPUDevice".
 */
export interface GPUDevice {
  index: number;
  name: string;
  memoryTotal: number;
  memoryFree: number;
  computeCapability?: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "EnginePlan".
 */
export interface EnginePlan {
  backend: string;
  status: EnginePlanStatus;
  message: string;
  warnings: string[];
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "GPURuntime".
 */
export interface GPURuntime {
  version: string;
  path: string;
  cudaMajor: number;
  installedAt: string;
  wheels: string[];
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "Job".
 */
export interface Job {
  id: string;
  kind: JobKind;
  state: JobState;
  repo?: string;
  revision?: string;
  model?: string;
  version?: string;
  phase?: string;
  progress: JobProgress;
  error?: string;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "JobProgress".
 */
export interface JobProgress {
  file?: string;
  fileIndex: number;
  fileCount: number;
  fileDone: number;
  fileTotal: number;
  done: number;
  total: number;
  bytesPerSec: number;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "LocalModels".
 */
export interface LocalModels {
  models: LocalModel[];
  students: LocalStudent[];
  downloads: Job[];
  provider: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "LocalModel".
 */
export interface LocalModel {
  name: string;
  repo: string;
  revision?: string;
  commit?: string;
  family?: string;
  params: number;
  sizeBytes: number;
  complete: boolean;
  ready: boolean;
  problem?: string;
  downloading: boolean;
  loaded: boolean;
  downloadedAt?: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "LocalStudent".
 */
export interface LocalStudent {
  name: string;
  base: string;
  adapter: string;
  family?: string;
  ready: boolean;
  problem?: string;
  loaded: boolean;
  description?: string;
  createdAt?: string;
}
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "DownloadRequest".
 */
export interface DownloadRequest {
  repo: string;
  revision?: string;
}
