// Providers upload files and whole folders, dropped or picked: a progress bar per file and one
// overall, retries as the queue makes them, and each image's state once it is registered, as the
// live stream reports it (GET /eventos/imagenes), reconciled with GET /imagenes.
import { useRef, useState } from "preact/hooks";
import { getJson, withQuery } from "../api";
import { formatBytes, t } from "../i18n";
import { session } from "../session";
import { useSignal } from "../signal";
import { changes, epoch, latest, type Shown } from "../live";
import type { Imagen, Imagenes } from "../types";
import { Estado } from "../ui/Estado";
import { Table } from "../ui/Table";
import { usePolling } from "../ui/usePolling";
import { fromDrop, fromInput } from "../upload/folder";
import { clearFinished, enqueue, items, retryFailed, type Item } from "../upload/queue";

function status(item: Item): string {
  const s = item.state;
  switch (s.kind) {
    case "queued":
      return t("state.queued");
    case "uploading":
      return t("state.uploading");
    case "retrying":
      return t("state.retrying", { n: s.attempt, s: Math.max(0, Math.ceil((s.at - Date.now()) / 1000)) });
    case "uploaded":
      return t(s.duplicate ? "state.duplicate" : "state.uploaded");
    case "failed":
      return `${t("state.failed")}: ${s.code}`;
  }
}

function sent(item: Item): number {
  const s = item.state;
  if (s.kind === "uploaded") return item.file.size;
  return s.kind === "uploading" ? Math.min(s.sent, item.file.size) : 0;
}

/**
 * The states of the uploaded images: the live changes, reconciled with GET /imagenes whenever
 * the stream (re)connects or lost changes, and every 10 s while some image is not final (a
 * change that came before the stream opened).
 */
function useStates(list: Item[]): Map<string, Shown> {
  const live = useSignal(changes);
  const ep = useSignal(epoch);
  const ids = list.flatMap((i) => (i.state.kind === "uploaded" ? [i.state.id] : []));
  const final = (s: Shown | undefined) => s !== undefined && s.estado !== "registrada";
  const read = useRef(new Map<string, Imagen>());
  const polled = usePolling<Map<string, Imagen>>(
    async () => {
      const known = read.current;
      const open = ids.filter((id) => !final(latest(live.get(id), known.get(id))));
      if (open.length === 0) return known;
      const out = new Map(known);
      const user = session.get()?.user;
      let cursor: string | null = null;
      // Pages of the provider's newest images until every open one is found.
      do {
        const page: Imagenes = await getJson<Imagenes>(withQuery("/imagenes", { proveedor_id: user, limit: 1000, cursor }));
        page.imagenes.forEach((img) => out.set(img.id, img));
        cursor = open.every((id) => out.has(id)) ? null : page.next_cursor;
      } while (cursor);
      read.current = out;
      return out;
    },
    10_000,
    [ep, ids.length],
  );
  const known = polled.data ?? read.current;
  return new Map(ids.flatMap((id) => {
    const s = latest(live.get(id), known.get(id));
    return s ? [[id, s] as [string, Shown]] : [];
  }));
}

/** A picker's files into the queue; the picker is emptied, so the same files can be picked again. */
function picked(e: Event): void {
  const input = e.currentTarget as HTMLInputElement;
  enqueue(fromInput(input.files));
  input.value = "";
}

export function Upload() {
  const list = useSignal(items);
  const [over, setOver] = useState(false);
  const states = useStates(list);
  const total = list.reduce((n, i) => n + i.file.size, 0);
  const done = list.reduce((n, i) => n + sent(i), 0);
  const uploaded = list.filter((i) => i.state.kind === "uploaded").length;
  const failed = list.filter((i) => i.state.kind === "failed").length;

  return (
    <div class="screen">
      <h1>{t("upload.title")}</h1>
      <div
        class={over ? "dropzone over" : "dropzone"}
        onDragOver={(e) => {
          e.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={async (e) => {
          e.preventDefault();
          setOver(false);
          if (e.dataTransfer) enqueue(await fromDrop(e.dataTransfer));
        }}
      >
        <p>{t("upload.drop")}</p>
        <label class="button">
          {t("upload.files")}
          <input
            type="file"
            multiple
            class="visually-hidden"
            data-testid="files"
            onChange={picked}
          />
        </label>
        <label class="button">
          {t("upload.folder")}
          <input
            ref={(el) => el?.setAttribute("webkitdirectory", "")}
            type="file"
            class="visually-hidden"
            data-testid="folder"
            onChange={picked}
          />
        </label>
      </div>
      {list.length > 0 && (
        <section aria-labelledby="overall">
          <h2 id="overall">{t("upload.overall")}</h2>
          <progress max={total || 1} value={done} aria-labelledby="overall" />
          <p role="status" id="upload-summary">
            {t("upload.summary", { done: uploaded, total: list.length, failed })}
          </p>
          <div class="actions">
            <button type="button" onClick={retryFailed} disabled={failed === 0}>
              {t("upload.retryFailed")}
            </button>
            <button type="button" onClick={clearFinished} disabled={uploaded === 0}>
              {t("upload.clear")}
            </button>
          </div>
          <Table id="uploads" caption={t("upload.title")} headers={[t("upload.file"), t("upload.size"), t("upload.progress"), t("upload.status"), t("images.state")]}>
            {list.map((item) => {
              const img = item.state.kind === "uploaded" ? states.get(item.state.id) : undefined;
              return (
                <tr key={item.key} data-path={item.path}>
                  <td>{item.path}</td>
                  <td>{formatBytes(item.file.size)}</td>
                  <td>
                    <progress max={item.file.size || 1} value={sent(item)} aria-label={item.path} />
                  </td>
                  <td class={`upload-${item.state.kind}`}>{status(item)}</td>
                  <td class="image-state">
                    {img && <Estado estado={img.estado} />}
                    {img?.motivo_rechazo && <span class="reason"> {img.motivo_rechazo}</span>}
                  </td>
                </tr>
              );
            })}
          </Table>
        </section>
      )}
    </div>
  );
}
