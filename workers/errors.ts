/**
 * OpenAI error objects: every failure the API reports is `{"error":{"message","type","param","code"}}`
 * with the HTTP status OpenAI uses for it, so that OpenAI clients raise their typed errors.
 */

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }

  toResponse(extraHeaders: Record<string, string> = {}): Response {
    return Response.json(this.toJSON(), { status: this.status, headers: { ...this.headers, ...extraHeaders } });
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, "invalid_request_error", code, param);

export const unauthorized = (message: string) => new ApiError(401, message, "invalid_request_error", "invalid_api_key");

export const forbidden = (message: string) => new ApiError(403, message, "invalid_request_error", "forbidden");

export const notFound = (message: string, param: string | null = null, code: string | null = "not_found") =>
  new ApiError(404, message, "invalid_request_error", code, param);

export const modelNotFound = (model: string) =>
  new ApiError(404, `The model '${model}' does not exist or you do not have access to it.`, "invalid_request_error", "model_not_found", "model");

export const payloadTooLarge = (limit: number) =>
  new ApiError(413, `Request body too large: the limit is ${limit} bytes.`, "invalid_request_error", "request_too_large");

export const sessionBusy = (session: string) =>
  new ApiError(409, `Session '${session}' is already generating a reply; retry when it has finished.`, "invalid_request_error", "session_busy", null, { "retry-after": "1" });

export const rateLimited = (message: string, kind: "requests" | "tokens", retryAfterSeconds: number) =>
  new ApiError(429, message, kind, "rate_limit_exceeded", null, { "retry-after": String(retryAfterSeconds) });

export const serverError = (message: string) => new ApiError(500, message, "server_error", "internal_error");

/** Rebuilds an ApiError from a response body another component (a Durable Object) sent. */
export function isOpenAIErrorBody(v: unknown): v is OpenAIErrorBody {
  if (typeof v !== "object" || v === null || !("error" in v)) return false;
  const e = (v as { error: unknown }).error;
  return typeof e === "object" && e !== null && typeof (e as { message?: unknown }).message === "string";
}
