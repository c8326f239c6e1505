/* Generated from backend/api by make generate. Do not edit. */

export type Shell = "desktop" | "server";
export type KeySource = "generated" | "config" | "flag" | "env";
/**
 * This interface was referenced by `ApiTypes`'s JSON-Schema
 * via the `definition` "EventType".
 */
export type EventType = "hello" | "reset" | "server.stats";

export interface ApiTypes {
  Info?: Info;
  ErrorResponse?: ErrorResponse;
  Hello?: Hello;
  ServerStats?: ServerStats;
  EventType?: EventType;
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
