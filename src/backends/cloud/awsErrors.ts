/**
 * An AWS SDK v3 error (or a network error on its way) as a CloudApiError — AWS's code, message
 * and request id, with the service's own remedy — shared by the EC2 and ECS clients.
 */
import { CloudApiError } from './provider';

/** Node network error codes: the request never got an answer. */
export const AWS_NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

/** `err` → CloudApiError titled `service` ("AWS EC2"), with `remedyFor(code, attempts)`. */
export function awsSdkError(err: unknown, service: string, what: string, remedyFor: (code: string, attempts: number | undefined) => string): CloudApiError {
  if (err instanceof CloudApiError) return err;
  const e = (err ?? {}) as { name?: string; code?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number; attempts?: number; requestId?: string } };
  // Service errors carry AWS's code as `name`; network errors a Node `code` (ECONNREFUSED...).
  const sysCode = typeof e.code === 'string' ? e.code : undefined;
  const name = e.name && e.name !== 'Error' ? e.name : undefined;
  const code = e.Code ?? (sysCode && AWS_NETWORK_CODES.has(sysCode) ? sysCode : undefined) ?? name ?? sysCode ?? 'Unknown';
  const attempts = e.$metadata?.attempts;
  const detail = (e.message ?? String(err)).trim() || code;
  const requestId = e.$metadata?.requestId ? ` [request ${e.$metadata.requestId}]` : '';
  return new CloudApiError(service, `${what} failed: ${code}: ${detail}${requestId}`, {
    remedy: remedyFor(code, attempts),
    status: e.$metadata?.httpStatusCode,
    code,
    cause: err,
  });
}
