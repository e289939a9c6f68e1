/**
 * Connect code name -> HTTP status, as ARCHITECTURE.md fixes it. Unlike Connect's own table,
 * FAILED_PRECONDITION and OUT_OF_RANGE are 400 and CANCELED is 499 (grpc-gateway's mapping).
 */
export const httpStatusByCode: Readonly<Record<string, number>> = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
};

export function httpStatusForCode(code: string): number {
  return httpStatusByCode[code] ?? 500;
}
