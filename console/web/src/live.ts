// The live image changes of the signed-in provider or admin: `GET /eventos/imagenes`, read with
// fetch (EventSource cannot send the bearer token) and parsed as Server-Sent Events. The stream
// reconnects with backoff when it ends (the server restarts, a proxy closes it), refreshing the
// tokens on a 401. Every (re)connection and every `desfase` (changes lost) bumps `epoch`, so
// views read their lists again and apply the changes from there.
import { authorized } from "./api";
import { session } from "./session";
import { signal } from "./signal";
import type { EstadoImagen } from "./ui/Estado";

export interface CambioImagen {
  id: string;
  proveedor_id: string;
  estado: EstadoImagen;
  modalidad: string | null;
  region_anatomica: string | null;
  motivo_rechazo: string | null;
  ocurrido_at: number;
}

/** What a view shows of an image's state. */
export interface Shown {
  estado: EstadoImagen;
  motivo_rechazo: string | null;
}

/**
 * Which of two states of one image to show, the live one or the one read from GET /imagenes:
 * a final state over `registrada` (the read may lag the stream, or the stream may have opened
 * after the change), else the live one.
 */
export function latest(live: Shown | undefined, read: Shown | undefined): Shown | undefined {
  if (!live || !read) return live ?? read;
  return live.estado === "registrada" && read.estado !== "registrada" ? read : live;
}

/** The latest change of each image seen since the stream opened. */
export const changes = signal<Map<string, CambioImagen>>(new Map());
/** Bumped when the views must read their lists again (a new connection, lost changes). */
export const epoch = signal(0);
/** Whether the stream is open. */
export const connected = signal(false);

let running: AbortController | null = null;

/** The events of an SSE body, as they come. */
async function* events(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      let event = "message";
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(":")) continue;
        const [field, ...rest] = line.split(":");
        const v = rest.join(":").replace(/^ /, "");
        if (field === "event") event = v;
        else if (field === "data") data.push(v);
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

async function follow(signal: AbortSignal): Promise<void> {
  let wait = 1000;
  while (!signal.aborted && session.get()) {
    try {
      const res = await authorized("/eventos/imagenes", { signal, headers: { Accept: "text/event-stream" } });
      if (res.ok && res.body) {
        connected.set(true);
        epoch.set(epoch.get() + 1);
        wait = 1000;
        for await (const { event, data } of events(res.body)) {
          if (event === "imagen") {
            const c = JSON.parse(data) as CambioImagen;
            changes.set(new Map(changes.get()).set(c.id, c));
          } else if (event === "desfase") {
            epoch.set(epoch.get() + 1);
          }
        }
      } else if (res.status === 403) {
        return; // this role has no live view
      }
    } catch {
      // Aborted, or the network failed: retried below unless aborted.
    }
    connected.set(false);
    if (signal.aborted) return;
    await new Promise((r) => setTimeout(r, wait * (0.5 + Math.random() / 2)));
    wait = Math.min(wait * 2, 30_000);
  }
}

/** Opens the stream for the session (once), closing it at logout. */
export function startLive(): void {
  if (running) return;
  running = new AbortController();
  const controller = running;
  void follow(controller.signal).finally(() => {
    if (running === controller) running = null;
  });
}

export function stopLive(): void {
  running?.abort();
  running = null;
  changes.set(new Map());
  connected.set(false);
}

session.subscribe((s) => {
  if (!s) stopLive();
});
