// The upload queue: each file is one `POST /imagenes` with its bytes as the body, a few at a time,
// with its progress (XMLHttpRequest: fetch reports no upload progress). Each file has an
// `Idempotency-Key` of its own from the moment it is queued, so a retry after a lost answer gets
// the first upload's id and no second image. Network errors, 429, 500, 502, 503 and 504 are retried
// with exponential backoff (the server's Retry-After when it gives one), up to MAX_ATTEMPTS; other
// refusals (a file that is not an image, too big) fail at once with the server's code. A 401
// refreshes the session's tokens and tries again without counting an attempt.
import { refresh, session } from "../session";
import { signal } from "../signal";
import type { Picked } from "./folder";

export const MAX_ATTEMPTS = 6;
/** Uploads at once: the connections a browser opens to one host over HTTP/1.1. */
const CONCURRENCY = 6;
const RETRYABLE = new Set([0, 429, 500, 502, 503, 504]);

export type ItemState =
  | { kind: "queued" }
  | { kind: "uploading"; sent: number }
  | { kind: "retrying"; attempt: number; at: number; code: string }
  | { kind: "uploaded"; id: string; duplicate: boolean }
  | { kind: "failed"; code: string; message: string };

export interface Item {
  key: string;
  path: string;
  file: File;
  attempts: number;
  state: ItemState;
}

export const items = signal<Item[]>([]);
let running = 0;

/** The queue's own list; `items` gets a copy at most once a frame (progress events come often). */
let list: Item[] = [];
let scheduled = false;

function publish(): void {
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    items.set([...list]);
  });
}

function update(key: string, state: ItemState, attempts?: number): void {
  const at = list.findIndex((i) => i.key === key);
  const item = list[at];
  if (!item) return;
  list[at] = { ...item, state, attempts: attempts ?? item.attempts };
  publish();
}

export function enqueue(picked: Picked[]): void {
  const added = picked.map<Item>(({ file, path }) => ({
    key: crypto.randomUUID(),
    path,
    file,
    attempts: 0,
    state: { kind: "queued" },
  }));
  list = [...list, ...added];
  publish();
  pump();
}

export function retryFailed(): void {
  list = list.map((i) => (i.state.kind === "failed" ? { ...i, attempts: 0, state: { kind: "queued" } } : i));
  publish();
  pump();
}

export function clearFinished(): void {
  list = list.filter((i) => i.state.kind !== "uploaded");
  publish();
}

function pump(): void {
  while (running < CONCURRENCY) {
    const next = list.find((i) => i.state.kind === "queued");
    if (!next) return;
    running++;
    update(next.key, { kind: "uploading", sent: 0 });
    void upload(next).finally(() => {
      running--;
      pump();
    });
  }
}

interface Answer {
  status: number;
  body: { id?: string; imagenes?: { duplicada?: boolean }[]; error?: string; message?: string };
  retryAfter: number | null;
}

function send(item: Item): Promise<Answer> {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/imagenes");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Idempotency-Key", item.key);
    const s = session.get();
    if (s) xhr.setRequestHeader("Authorization", `Bearer ${s.access}`);
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => update(item.key, { kind: "uploading", sent: e.loaded });
    const done = () => {
      const retry = Number(xhr.getResponseHeader("Retry-After"));
      resolve({ status: xhr.status, body: (xhr.response ?? {}) as Answer["body"], retryAfter: retry > 0 ? retry : null });
    };
    xhr.onload = done;
    xhr.onerror = done;
    xhr.ontimeout = done;
    xhr.send(item.file);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function upload(item: Item): Promise<void> {
  let attempts = item.attempts;
  for (;;) {
    const answer = await send(item);
    if (answer.status === 401 && (await refresh())) continue;
    attempts++;
    if (answer.status === 202) {
      const duplicate = answer.body.imagenes?.[0]?.duplicada === true;
      update(item.key, { kind: "uploaded", id: answer.body.id ?? "", duplicate }, attempts);
      return;
    }
    const code = answer.body.error ?? (answer.status === 0 ? "network" : `http_${answer.status}`);
    if (!RETRYABLE.has(answer.status) || attempts >= MAX_ATTEMPTS) {
      update(item.key, { kind: "failed", code, message: answer.body.message ?? "" }, attempts);
      return;
    }
    const wait = answer.retryAfter ? answer.retryAfter * 1000 : Math.min(30_000, 500 * 2 ** attempts) * (0.5 + Math.random() / 2);
    update(item.key, { kind: "retrying", attempt: attempts, at: Date.now() + wait, code }, attempts);
    await sleep(wait);
    update(item.key, { kind: "uploading", sent: 0 }, attempts);
  }
}
