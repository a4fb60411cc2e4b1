/**
 * The one error catalogue: every refusal has a stable machine `code`, an
 * HTTP status and a title. Handlers throw AppError; `toProblem` turns any
 * error into an RFC 9457 problem, and anything unknown into a bare 500.
 */
export const catalogue = {
  VALIDATION_FAILED: { status: 400, title: 'The request is not valid' },
  MALFORMED_JSON: { status: 400, title: 'The request body is not valid JSON' },
  UNAUTHORIZED: { status: 401, title: 'Authentication is required' },
  FORBIDDEN: { status: 403, title: 'Not allowed' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  SOLD_OUT: { status: 409, title: 'Sold out' },
  NOT_ENOUGH_STOCK: { status: 409, title: 'Not enough stock for this quantity' },
  LIMIT_REACHED: { status: 409, title: 'Per-buyer limit reached' },
  PURCHASE_IN_PROGRESS: { status: 409, title: 'Another purchase of yours is still being settled' },
  SALE_NOT_OPEN: { status: 409, title: 'The sale is not open yet' },
  SALE_ENDED: { status: 409, title: 'The sale has ended' },
  NOT_CANCELLABLE: { status: 409, title: 'This purchase cannot be cancelled' },
  BID_TOO_LOW: { status: 409, title: 'The bid is below the next minimum bid' },
  NOT_ABOVE_OWN_BID: { status: 409, title: 'The bid is not above your own standing bid' },
  AUCTION_NOT_OPEN: { status: 409, title: 'The auction is not open yet' },
  AUCTION_CLOSED: { status: 409, title: 'The auction is closed' },
  RETRACTION_TOO_LATE: { status: 409, title: 'Bids cannot be retracted in the last moments of an auction' },
  CONFLICT: { status: 409, title: 'Conflict' },
  TOO_MANY_SUBSCRIPTIONS: { status: 409, title: 'Too many live subscriptions on this connection' },
  IDEMPOTENCY_IN_PROGRESS: { status: 409, title: 'A request with this Idempotency-Key is still in progress' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Request body must be application/json' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'Idempotency-Key was used with a different request' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  INTERNAL: { status: 500, title: 'Internal error' },
  UNAVAILABLE: { status: 503, title: 'Service unavailable' },
} as const;

export type ErrorCode = keyof typeof catalogue;

export interface FieldError {
  path: string;
  message: string;
}

export class AppError extends Error {
  readonly status: number;
  /** The problem+json body, serialised once per instance (shared instances answer many requests). */
  serialized?: string;
  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
    readonly extra?: Record<string, unknown>,
    /** Headers the answer must carry, e.g. Retry-After. */
    readonly headers?: Record<string, string>,
  ) {
    super(detail ?? catalogue[code].title);
    this.status = catalogue[code].status;
  }

  /** A VALIDATION_FAILED refusal naming the one field at fault (`/endsAt`, `query:limit`, `header:Idempotency-Key`). */
  static invalid(path: string, message: string, detail = `${path} ${message}`): AppError {
    return new AppError('VALIDATION_FAILED', detail, { errors: [{ path, message }] });
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
  [extra: string]: unknown;
}

export function problemOf(err: AppError): Problem {
  const entry = catalogue[err.code];
  // Extension members first: none may replace a member RFC 9457 defines (an extension named `status` once did).
  return {
    ...err.extra,
    type: `https://stampede.dev/problems/${err.code.toLowerCase().replace(/_/g, '-')}`,
    title: entry.title,
    status: entry.status,
    code: err.code,
    ...(err.detail !== undefined ? { detail: err.detail } : {}),
  };
}

/**
 * One SOLD_OUT refusal for every request: a sold-out storm answers millions of
 * identical refusals, and building an Error (with its stack) and its JSON for
 * each was the largest cost of that path.
 */
export const SOLD_OUT = new AppError('SOLD_OUT', 'every unit of this sale is sold or reserved', { available: 0 });
