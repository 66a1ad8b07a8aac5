// The part of the `pg` package the backends use (it ships no types of its own; @types/pg would be
// a dependency for this alone).
declare module 'pg' {
  interface QueryResult {
    rows: Array<Record<string, unknown>>;
    rowCount: number | null;
  }
  interface PoolConfig {
    connectionString: string;
    max?: number;
    connectionTimeoutMillis?: number;
    idleTimeoutMillis?: number;
    application_name?: string;
  }
  class Pool {
    constructor(config: PoolConfig);
    query(text: string, values?: unknown[]): Promise<QueryResult>;
    on(event: 'error', listener: (error: Error) => void): this;
    end(): Promise<void>;
  }
  const pg: { Pool: typeof Pool };
  export default pg;
}
