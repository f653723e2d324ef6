// A JSON command (POST, PUT, DELETE) with the session's token: its JSON answer, or the ApiError.
import { authorized, errorOf } from "../api";

export async function send<T = unknown>(method: string, path: string, body?: unknown): Promise<T | null> {
  const res = await authorized(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await errorOf(res);
  const text = await res.text();
  return text ? (JSON.parse(text) as T) : null;
}
