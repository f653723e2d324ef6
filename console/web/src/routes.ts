// Which screens each role has, in the order of its navigation. The first is its home. The server
// refuses whatever a role may not do; this only keeps the console from offering it.
import type { Key } from "./i18n";
import type { Role } from "./session";

export type Screen =
  | "upload"
  | "images"
  | "balance"
  | "search"
  | "audit"
  | "patients"
  | "users"
  | "payments"
  | "institutions"
  | "health"
  | "reports"
  | "imports"
  | "ae";

export const SCREENS: Record<Role, Screen[]> = {
  proveedor: ["upload", "images", "balance", "reports", "imports", "ae", "patients"],
  consumidor: ["search", "balance"],
  admin: ["audit", "images", "users", "payments", "institutions", "patients", "ae", "reports", "imports", "health", "search"],
  medico: ["patients"],
};

export const LABEL: Record<Screen, Key> = {
  upload: "nav.upload",
  images: "nav.images",
  balance: "nav.balance",
  search: "nav.search",
  audit: "nav.audit",
  patients: "nav.patients",
  users: "nav.users",
  payments: "nav.payments",
  institutions: "nav.institutions",
  health: "nav.health",
  reports: "nav.reports",
  imports: "nav.imports",
  ae: "nav.ae",
};

/** Who may open the viewer (`#/viewer/{id}`): those who may retrieve anonymized pixels. */
export const VIEWERS: Role[] = ["consumidor", "admin"];

/** The image the hash names for the viewer (`#/viewer/{id}`), if the role may view it. */
export function viewed(role: Role, hash: string): string | null {
  const m = /^#\/viewer\/([0-9A-Za-z-]{1,64})$/.exec(hash);
  return m && VIEWERS.includes(role) ? m[1]! : null;
}

/** The screen the hash names, if the role has it; else the role's home. */
export function current(role: Role, hash: string): Screen | null {
  const name = hash.replace(/^#\/?/, "") as Screen;
  const screens = SCREENS[role];
  return screens.includes(name) ? name : (screens[0] ?? null);
}
