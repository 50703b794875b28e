// Types of the zsaga Node.js library (docs/protocol.md for every message).

/** A params or output value: integers beyond 2^53 come as bigint. Never floating point. */
export type Value = null | boolean | number | bigint | string;
export type FlatMap = Record<string, Value>;

export interface RetryPolicy { attempts?: number; backoff_ms?: number; backoff_max_ms?: number }

export interface StepDefinition {
  id: string;
  system: string;
  action: string;
  compensation?: string | null;
  deps?: string[];
  params?: FlatMap;
  timeout_ms?: number;
  retry?: RetryPolicy;
  compensation_retry?: RetryPolicy;
}

export interface SagaDefinition { id?: string; name?: string; steps: StepDefinition[] }

export type SagaState = 'running' | 'compensating' | 'completed' | 'compensated' | 'parked' | 'resolved';

export interface StepState {
  id: string; system: string; action: string; compensation: string | null; deps: string[]; state: string;
  attempts: number; compensation_attempts: number; started_ms: number; finished_ms: number;
  compensation_started_ms: number; compensation_finished_ms: number; code: string | null; error: string | null;
  output: FlatMap | null;
}

export interface HistoryEntry { seq: number; ts_ms: number; step: string | null; what: string; attempt: number; reason: string | null }

export interface Saga {
  id: string; name: string | null; state: SagaState; reason: string | null; created_ms: number; updated_ms: number;
  steps: StepState[]; history: HistoryEntry[];
}

export interface SagaSummary { id: string; name: string | null; state: SagaState; reason: string | null; steps: number; created_ms: number; updated_ms: number }

export interface Accepted { type: 'accepted'; req: number; id: string; state: SagaState; duplicate: boolean }

export interface SagaEvent { v: number; type: string; seq: number; ts_ms: number; id: string; state: string; step?: string; attempt?: number; reason?: string }

export interface OperationInfo { name: string; params: string | null; outputs: string | null }
export interface SystemInfo { name: string; workers: { instance: string; key: string; capacity: number; inflight: number }[]; operations: OperationInfo[] }

export interface ClientOptions {
  /** This client's key pair (NAME.key_secret). */
  key?: string;
  /** zsagad's public key (zsagad.key). */
  serverKey?: string;
  /** Plaintext, for a zsagad run --insecure (tests only). */
  insecure?: boolean;
  /** zsagad's events socket (default tcp://127.0.0.1:5572). */
  events?: string;
  /** Bound of each request (default 5000). */
  timeoutMs?: number;
  /** Check each step's params against the workers' schemas before sending (default true). */
  checkParams?: boolean;
}

export class Client {
  constructor(endpoint?: string, options?: ClientOptions);
  request(type: string, fields?: Record<string, unknown>): Promise<Record<string, unknown>>;
  systems(): Promise<SystemInfo[]>;
  schemas(refresh?: boolean): Promise<Record<string, { params: string | null; outputs: string | null }>>;
  submit(saga: SagaDefinition | string): Promise<Accepted>;
  status(id: string): Promise<Saga>;
  list(options?: { state?: SagaState; limit?: number; cursor?: string; sinceMs?: number; untilMs?: number }): Promise<{ sagas: SagaSummary[]; next: string | null }>;
  wait(id: string, options?: { timeoutMs?: number; pollMs?: number }): Promise<Saga>;
  run(saga: SagaDefinition | string, options?: { timeoutMs?: number; pollMs?: number }): Promise<Saga>;
  cancel(id: string, reason?: string): Promise<void>;
  retry(id: string): Promise<void>;
  resolve(id: string, reason: string): Promise<void>;
  stats(): Promise<Record<string, unknown>>;
  events(afterSeq?: number, limit?: number): Promise<{ events: SagaEvent[]; next: number; first: number; head: number }>;
  watch(options?: { fromSeq?: number; topic?: string; idleMs?: number }): AsyncGenerator<SagaEvent, void, void>;
}

/** The connection a step writes through: SQL with `?` placeholders (Redis: a Lua script). */
export interface Conn {
  readonly dialect: 'postgresql' | 'mysql' | 'redis';
  /** Rows of the last statement, as arrays. */
  rows: unknown[][];
  /** Rows changed by the last statement (rows read, for a query). */
  rowCount: number;
  execute(sql: string, ...params: (Value | Buffer)[]): Promise<unknown[][]>;
}

export class StepContext {
  readonly db: Conn;
  readonly dialect: Conn['dialect'];
  readonly saga: string;
  readonly step: string;
  readonly op: string;
  readonly phase: 'action' | 'compensation';
  readonly attempt: number;
  readonly params: FlatMap;
  readonly nowMs: number;
  /** A compensation: the action's output. */
  readonly prior: FlatMap;
  str(key: string, def?: string): string;
  int(key: string, def?: number | bigint): number | bigint;
  bool(key: string, def?: boolean): boolean;
  amount(key: string): number | bigint;
  /** Redis: the effect inside the barrier script (`local function effect(A, prior)`). */
  lua(effect: string, args?: Value[]): Promise<FlatMap>;
}

export interface OperationSpec {
  /** Schema text of the params, e.g. "account:str amount:int1..1000000000000000". */
  params?: string;
  outputs?: string;
  isolation?: 'read-committed' | 'repeatable-read' | 'serializable';
  rule?: string;
  errors?: string;
}

export interface Migration {
  version: number;
  name: string;
  up: Partial<Record<'sqlite' | 'postgresql' | 'mysql' | 'redis', string>>;
  down?: Partial<Record<'sqlite' | 'postgresql' | 'mysql' | 'redis', string>>;
}

export type Operation = (ctx: StepContext) => Promise<FlatMap | void> | FlatMap | void;

export class Worker {
  constructor(system: string, options?: { migrations?: Migration[] });
  readonly system: string;
  operation(name: string, spec: OperationSpec, fn: Operation): this;
  operation(name: string, fn: Operation): this;
  /** The worker program: `run` (default) or `migrate status|up|down [VERSION]`; resolves to the exit code. */
  main(argv?: string[]): Promise<number>;
  stop(): void;
}

export class ZsagaError extends Error { code: string; reason: string; reply: Record<string, unknown> }
export class Rejected extends ZsagaError {}
export class RequestError extends ZsagaError {}
export class InvalidParams extends ZsagaError {}
export class NoAnswer extends ZsagaError {}
export class Timeout extends ZsagaError {}
/** Thrown by an operation: failed for good. */
export class Fail extends Error { constructor(code: string, message?: string); code: string; detail: string }
/** Thrown by an operation: try again later. */
export class RetryLater extends Error { constructor(message?: string); detail: string }
export class DbError extends Error { rc: 'retry' | 'failed' | 'broken' | 'conflict' }
export const version: string;
