// A provider's images (an admin's: every image, e.g. the rejected ones), newest first, with their
// state and rejection reason. The first page is read again whenever the live stream (re)connects
// or lost changes, and every change the stream brings is applied to it as it comes (new images
// on top). Older pages on demand.
import { useState } from "preact/hooks";
import { getJson, withQuery } from "../api";
import { formatDate, t } from "../i18n";
import { changes, epoch, latest, type CambioImagen } from "../live";
import { session } from "../session";
import { useSignal } from "../signal";
import type { Imagen, Imagenes } from "../types";
import { Alert } from "../ui/Alert";
import { Estado, type EstadoImagen } from "../ui/Estado";
import { Table } from "../ui/Table";
import { usePolling } from "../ui/usePolling";

/** `rows` with the live changes applied: states updated, images not listed yet put on top. */
export function applyChanges(rows: Imagen[], changed: Map<string, CambioImagen>, estado: EstadoImagen | ""): Imagen[] {
  const updated = rows.map((r) => {
    const c = changed.get(r.id);
    return c && latest(c, r) === c ? { ...r, estado: c.estado, motivo_rechazo: c.motivo_rechazo, modalidad: c.modalidad ?? r.modalidad } : r;
  });
  const fresh = [...changed.values()]
    .filter((c) => !rows.some((r) => r.id === c.id))
    .sort((a, b) => b.ocurrido_at - a.ocurrido_at)
    .map<Imagen>((c) => ({ ...c, creada_at: c.ocurrido_at, anonimizada: null }));
  return [...fresh, ...updated].filter((r) => !estado || r.estado === estado);
}

export function Images() {
  const s = session.get();
  const mine = s?.role === "proveedor" ? s.user : undefined;
  const [estado, setEstado] = useState<EstadoImagen | "">("");
  const [older, setOlder] = useState<Imagen[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const ep = useSignal(epoch);
  const changed = useSignal(changes);
  const query = { proveedor_id: mine, estado: estado || undefined, limit: 100 };
  const live = usePolling(() => getJson<Imagenes>(withQuery("/imagenes", query)), 60_000, [ep, estado]);
  const first = live.data?.imagenes ?? [];
  const rows = applyChanges([...first, ...older.filter((o) => !first.some((f) => f.id === o.id))], changed, estado);
  const next = cursor ?? live.data?.next_cursor ?? null;

  async function more() {
    if (!next) return;
    const page = await getJson<Imagenes>(withQuery("/imagenes", { ...query, cursor: next }));
    setOlder([...older, ...page.imagenes]);
    setCursor(page.next_cursor);
  }

  return (
    <div class="screen">
      <h1>{t("images.title")}</h1>
      <div class="filters">
        <label>
          {t("images.state")}
          <select
            value={estado}
            onChange={(e) => {
              setEstado(e.currentTarget.value as EstadoImagen | "");
              setOlder([]);
              setCursor(null);
            }}
          >
            <option value="">{t("audit.any")}</option>
            <option value="registrada">{t("estado.registrada")}</option>
            <option value="anonimizada">{t("estado.anonimizada")}</option>
            <option value="rechazada">{t("estado.rechazada")}</option>
          </select>
        </label>
      </div>
      {live.at && <p class="muted" role="status">{t("live.updated", { time: formatDate(live.at) })}</p>}
      <Alert error={live.error} />
      {live.data && rows.length === 0 && <p>{t("images.empty")}</p>}
      {rows.length > 0 && (
        <Table id="images" caption={t("images.title")} headers={[t("images.id"), t("images.provider"), t("images.created"), t("images.modality"), t("images.region"), t("images.state"), t("images.reason")]}>
          {rows.map((img) => (
            <tr key={img.id} data-id={img.id}>
              <td class="mono">{img.id}</td>
              <td>{img.proveedor_id}</td>
              <td>{formatDate(img.creada_at)}</td>
              <td>{img.modalidad ?? "—"}</td>
              <td>{img.region_anatomica ?? "—"}</td>
              <td>
                <Estado estado={img.estado} />
              </td>
              <td>{img.motivo_rechazo ?? ""}</td>
            </tr>
          ))}
        </Table>
      )}
      {next && (
        <button type="button" onClick={more}>
          {t("images.more")}
        </button>
      )}
    </div>
  );
}
