// The session: the token pair of the last login, kept in sessionStorage (one refresh-token family
// per tab: a refresh token works once, and two tabs refreshing one family would revoke it). The
// role and user id are read from the access token for the screens only; the server judges every
// request.
import { signal } from "./signal";

export type Role = "proveedor" | "consumidor" | "admin" | "medico";

export interface Session {
  access: string;
  refresh: string;
  user: string;
  role: Role;
}

interface Tokens {
  access_token: string;
  refresh_token: string;
}

const KEY = "alpes.session";

function load(): Session | null {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? "null") as Session | null;
    return s && s.access && s.refresh ? s : null;
  } catch {
    return null;
  }
}

export const session = signal<Session | null>(load());
/** Why the last session ended, when the user did not end it (shown on the login screen). */
export const ended = signal<"expired" | null>(null);

function claims(jwt: string): { sub: string; role: Role } {
  const part = jwt.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(json) as { sub: string; role: Role };
}

export function start(tokens: Tokens): void {
  const c = claims(tokens.access_token);
  const s: Session = { access: tokens.access_token, refresh: tokens.refresh_token, user: c.sub, role: c.role };
  sessionStorage.setItem(KEY, JSON.stringify(s));
  ended.set(null);
  session.set(s);
}

export function clear(reason: "expired" | null): void {
  sessionStorage.removeItem(KEY);
  ended.set(reason);
  session.set(null);
}

let refreshing: Promise<boolean> | null = null;

/** Trades the refresh token for a new pair, once however many requests ask at the same time. */
export function refresh(): Promise<boolean> {
  const s = session.get();
  if (!s) return Promise.resolve(false);
  refreshing ??= fetch("/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: s.refresh }),
  })
    .then(async (res) => {
      if (!res.ok) {
        clear("expired");
        return false;
      }
      start((await res.json()) as Tokens);
      return true;
    })
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** Revokes the access token and the refresh token's family, then forgets them. */
export async function logout(): Promise<void> {
  const s = session.get();
  if (s) {
    await fetch("/auth/logout", {
      method: "POST",
      headers: { Authorization: `Bearer ${s.access}`, "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: s.refresh }),
    }).catch(() => undefined);
  }
  clear(null);
}
