// RFC 9457 problem details: one error handler maps every error to application/problem+json.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { isStoreUnavailable } from '../db/faults.ts';
import { ServiceError, storeUnavailable } from '../service/errors.ts';
import type { ProblemCode } from '../service/problem-codes.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ProblemCode;
  detail: string;
  errors?: { path: string; message: string }[];
}

/** Seconds a client is asked to wait before retrying a 503 (RFC 9110 §10.2.3 Retry-After). */
export const RETRY_AFTER_SECONDS = 2;

export function problemResponse(c: Context, p: Problem): Response {
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  if (p.status === 503) headers['retry-after'] = String(RETRY_AFTER_SECONDS);
  return c.body(JSON.stringify(p), p.status as 400, headers);
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function toProblem(e: unknown): Problem {
  if (e instanceof ServiceError) {
    return {
      type: `https://meterproof.dev/problems/${e.code.toLowerCase().replace(/_/g, '-')}`,
      title: TITLES[e.status] ?? 'Error',
      status: e.status,
      code: e.code,
      detail: e.message,
      ...(e.fields ? { errors: [...e.fields] } : {}),
    };
  }
  if (e instanceof HTTPException) {
    const status = e.status;
    return { type: 'about:blank', title: TITLES[status] ?? 'Error', status, code: status === 413 ? 'PAYLOAD_TOO_LARGE' : 'HTTP_ERROR', detail: e.message || (TITLES[status] ?? 'error') };
  }
  if (isStoreUnavailable(e)) return toProblem(storeUnavailable());
  if ((e as { code?: string })?.code === 'KEY_UNAVAILABLE') {
    return { type: 'about:blank', title: TITLES[503]!, status: 503, code: 'KEY_UNAVAILABLE', detail: (e as Error).message };
  }
  return { type: 'about:blank', title: TITLES[500]!, status: 500, code: 'INTERNAL', detail: 'internal error' };
}

/**
 * Requests that Node's HTTP parser refuses before the app sees them (an unknown method, a header
 * block over the size limit, a malformed chunk, a request that took too long to arrive) would
 * otherwise get Node's bare status line with no body. This answers them as problem+json, like
 * everything else: 431 `HEADERS_TOO_LARGE`, 413 `CHUNK_EXTENSIONS_TOO_LARGE`, 408
 * `REQUEST_TIMEOUT`, and 400 `MALFORMED_HTTP` otherwise. As Node's own handler does, nothing is
 * written once a response on the connection has begun (the connection is closed instead), and a
 * connection the client reset is just closed.
 */
export function answerClientErrors(server: { on(event: 'clientError', fn: (err: Error & { code?: string }, socket: import('node:stream').Duplex) => void): unknown }): void {
  server.on('clientError', (err, socket) => {
    const current = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || current?.headersSent) return void socket.destroy();
    const refusal =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? new ServiceError(431, 'HEADERS_TOO_LARGE', 'the request line and headers exceed the server limit (16 KiB)')
        : err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
          ? new ServiceError(413, 'CHUNK_EXTENSIONS_TOO_LARGE', 'the chunk extensions exceed the server limit')
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? new ServiceError(408, 'REQUEST_TIMEOUT', 'the request did not arrive in time')
            : new ServiceError(400, 'MALFORMED_HTTP', 'the request is not valid HTTP/1.1');
    const problem = toProblem(refusal);
    const body = JSON.stringify(problem);
    socket.end(`HTTP/1.1 ${problem.status} ${problem.title}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
}
