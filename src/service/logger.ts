// Structured JSON logs (pino), one object per line on stdout. The level comes from LOG_LEVEL.
// Nothing secret is ever logged: no headers, no request bodies, no SQL statements or parameters
// (a driver error is reduced to its SQLSTATE and the first line of its message), no key hashes.
import pino from 'pino';
import { describeStoreError, isStoreError, storeErrorCode } from '../db/faults.ts';

export type Logger = pino.Logger;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(opts: { level?: LogLevel; destination?: pino.DestinationStream } = {}): Logger {
  const logger = pino(
    {
      level: opts.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // `err` as errorFields makes it (pino's own serializer would rename its type "Object"); a
      // raw Error logged under `err` is reduced the same way
      serializers: { err: (e: unknown) => (e instanceof Error ? errorFields(e) : e) },
      // belt and braces: nothing logs these, and were a future line to, they are censored
      redact: { paths: ['authorization', '*.authorization', 'headers', '*.headers', 'secret', '*.secret', 'token', '*.token'], censor: '[redacted]' },
    },
    opts.destination ?? bufferedStdout(),
  );
  OURS.add(logger);
  return logger;
}

/** What the request log line of every HTTP request says. */
export interface RequestLine {
  readonly req_id: string;
  readonly method: string;
  readonly route: string;
  readonly status: number;
  readonly duration_ms: number;
}

/**
 * The writer of the request line: the line `logger.info(fields, 'request')` would write, written
 * straight to the logger's destination. The line has these five fields only, none of them secret
 * (the request id is one the caller gave and the service checked, or made; the route is the
 * pattern, never the path), so it skips pino's per-call redaction walk, which allocated more than
 * anything else on the single-event attest path. Only for a logger made by createLogger (whose
 * line format this is) writing to a plain stream; any other logger (a child, a multistream
 * destination) gets logger.info. Nothing is written below LOG_LEVEL=info.
 */
export function requestLineWriter(logger: Logger): (line: RequestLine) => void {
  const fields = logger as unknown as Record<symbol, unknown>;
  const stream = fields[pino.symbols.streamSym] as ({ write(s: string): unknown } & Record<symbol, unknown>) | undefined;
  if (!OURS.has(logger) || !stream || typeof stream.write !== 'function' || stream[pino.symbols.needsMetadataGsym]) return (l) => logger.info(l, 'request');
  return (l) => {
    if (!logger.isLevelEnabled('info')) return;
    // the bindings as pino holds them, serialized (`,"pid":…`)
    const bindings = fields[pino.symbols.chindingsSym] as string;
    stream.write(
      `{"level":"info","time":"${new Date().toISOString()}"${bindings},"req_id":${JSON.stringify(l.req_id)},"method":${JSON.stringify(l.method)},"route":${JSON.stringify(l.route)},"status":${l.status},"duration_ms":${l.duration_ms},"msg":"request"}\n`,
    );
  };
}

/** Loggers made by createLogger. */
const OURS = new WeakSet<Logger>();

/** How long a log line may wait in the buffer before it is written. */
export const LOG_FLUSH_MS = 250;

/** Standard output, written in chunks of 4 KiB or every LOG_FLUSH_MS, whichever comes first: one
 *  write per request line cost more CPU than the request's signing. serve flushes it when it stops. */
function bufferedStdout(): pino.DestinationStream {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  setInterval(() => dest.flush(), LOG_FLUSH_MS).unref();
  return dest;
}

/** A logger that drops everything (the default where none is given, e.g. in-process tests). */
export const silentLogger = (): Logger => pino({ level: 'silent' });

/**
 * An error as safe log fields: its class, SQLSTATE or code, the first line of the innermost
 * message (drizzle's own message repeats the statement and its parameters: it is skipped for its
 * cause), and the stack frames (code locations only).
 */
export function errorFields(e: unknown): { type: string; code?: string; message: string; stack?: string } {
  // a store error's text can hold the statement, its parameters and quoted values (a key hash):
  // its SQLSTATE (or driver code) and class only
  if (isStoreError(e)) {
    const code = storeErrorCode(e);
    return { type: 'StoreError', ...(code ? { code } : {}), message: describeStoreError(e) };
  }
  let inner: unknown = e;
  for (let i = 0; i < 5 && inner instanceof Error && inner.cause !== undefined; i++) inner = inner.cause;
  const message = (inner instanceof Error ? inner.message : String(inner)).split('\n')[0]!.slice(0, 300);
  const code = (inner as { code?: unknown } | null)?.code;
  const top = e instanceof Error ? e : null;
  const frames = top?.stack?.split('\n').filter((l) => /^\s+at /.test(l)).slice(0, 8).join('\n');
  return {
    type: inner instanceof Error ? inner.constructor.name : typeof inner,
    ...(typeof code === 'string' ? { code } : {}),
    message: /^Failed query:/.test(message) ? 'query failed' : message,
    ...(frames ? { stack: frames } : {}),
  };
}
