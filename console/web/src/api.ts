// Requests to Alpes' API with the session's bearer token. A 401 refreshes the tokens once and
// repeats the request; every error answer (always JSON `{"error", "message"}`) becomes an ApiError.
import { refresh, session } from "./session";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

export async function errorOf(res: Response): Promise<ApiError> {
  const body = (await res.json().catch(() => ({}))) as { error?: string; message?: string };
  const retry = Number(res.headers.get("Retry-After"));
  return new ApiError(res.status, body.error ?? "http_" + res.status, body.message ?? res.statusText, Number.isFinite(retry) && retry > 0 ? retry : null);
}

/** `fetch` with the bearer token, refreshed once on a 401. */
export async function authorized(path: string, init: RequestInit = {}): Promise<Response> {
  const attempt = () => {
    const headers = new Headers(init.headers);
    const s = session.get();
    if (s) headers.set("Authorization", `Bearer ${s.access}`);
    return fetch(path, { ...init, headers });
  };
  let res = await attempt();
  if (res.status === 401 && session.get() && (await refresh())) res = await attempt();
  return res;
}

/** A JSON answer of a GET (or of `init`), or an ApiError. */
export async function getJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await authorized(path, init);
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

/** `path` with the non-empty entries of `params` as its query string. */
export function withQuery(path: string, params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
