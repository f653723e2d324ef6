// Consumers search the anonymized images (modality, body part, dates, provider), see each one's
// price before paying for it, and download one or a selection. Every download is metered and
// billed by the server; the price is GET /imagenes/{id}'s.
import { useState } from "preact/hooks";
import { getJson, withQuery } from "../api";
import { formatDate, formatMoney, t } from "../i18n";
import type { ImagenDetalle, Imagenes } from "../types";
import { Alert } from "../ui/Alert";
import { DateRange, rangeOf } from "../ui/DateRange";
import { field } from "../ui/form";
import { saveAs } from "../ui/save";
import { Table } from "../ui/Table";
import { Thumbnail } from "../ui/Thumbnail";

const PAGE = 50;

/** What a list of images costs (in the first one's currency: the prices of one instance share it). */
const priceOf = (list: ImagenDetalle[]) => list.reduce((n, i) => n + i.precio_minor, 0);

export function Search() {
  const [results, setResults] = useState<ImagenDetalle[] | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [downloaded, setDownloaded] = useState<Set<string>>(new Set());
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function search(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const text = (k: string) => field(f, k);
    const range = rangeOf(f);
    setBusy(true);
    setError(null);
    try {
      const page = await getJson<Imagenes>(
        withQuery("/imagenes", {
          estado: "anonimizada",
          modalidad: text("modalidad"),
          region_anatomica: text("region"),
          proveedor_id: text("proveedor"),
          creada_desde: range.desde,
          creada_hasta: range.hasta,
          limit: PAGE,
        }),
      );
      const details = await Promise.all(page.imagenes.map((i) => getJson<ImagenDetalle>(`/imagenes/${encodeURIComponent(i.id)}`)));
      setResults(details);
      setSelected(new Set());
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  async function fetchAll(list: ImagenDetalle[]) {
    if (list.length === 0 || !confirm(t("search.confirm", { price: formatMoney(priceOf(list), list[0]!.moneda) }))) return;
    setError(null);
    for (const img of list) {
      try {
        await saveAs(`/imagenes/${encodeURIComponent(img.id)}/anonimizada`, `${img.id}.dcm`);
        setDownloaded((d) => new Set(d).add(img.id));
      } catch (err) {
        setError(err);
        return;
      }
    }
  }

  const chosen = (results ?? []).filter((r) => selected.has(r.id));
  const total = priceOf(chosen);
  const toggle = (id: string) => {
    const s = new Set(selected);
    if (!s.delete(id)) s.add(id);
    setSelected(s);
  };

  return (
    <div class="screen">
      <h1>{t("search.title")}</h1>
      <form class="filters" onSubmit={search}>
        <label>
          {t("search.modality")}
          <input name="modalidad" placeholder="CT, MR…" />
        </label>
        <label>
          {t("search.region")}
          <input name="region" />
        </label>
        <DateRange />
        <label>
          {t("search.provider")}
          <input name="proveedor" />
        </label>
        <button type="submit" disabled={busy}>
          {t("search.submit")}
        </button>
      </form>
      <Alert error={error} />
      {results && (
        <section aria-label={t("search.results", { n: results.length })}>
          <p role="status">{t("search.results", { n: results.length })}</p>
          {chosen.length > 0 && (
            <div class="actions">
              <span>{t("search.total", { total: formatMoney(total, chosen[0]!.moneda) })}</span>
              <button type="button" onClick={() => fetchAll(chosen)}>
                {t("search.downloadSelected", { n: chosen.length })}
              </button>
            </div>
          )}
          <Table id="results" caption={t("search.title")} headers={[t("search.select"), t("search.preview"), t("images.id"), t("images.created"), t("images.modality"), t("images.region"), t("search.provider"), t("search.price"), t("table.actions")]}>
            {results.map((img) => (
              <tr key={img.id} data-id={img.id}>
                <td>
                  <input type="checkbox" checked={selected.has(img.id)} onChange={() => toggle(img.id)} aria-label={`${t("search.select")} ${img.id}`} />
                </td>
                <td>
                  <Thumbnail img={img} label={`${t("search.preview")} ${img.modalidad ?? ""}`} />
                </td>
                <td class="mono">{img.id}</td>
                <td>{formatDate(img.creada_at)}</td>
                <td>{img.modalidad ?? "—"}</td>
                <td>{img.region_anatomica ?? "—"}</td>
                <td>{img.proveedor_id}</td>
                <td class="num price">{formatMoney(img.precio_minor, img.moneda)}</td>
                <td>
                  <a class="button small" href={`#/viewer/${img.id}`} aria-label={`${t("search.view")} ${img.id}`}>
                    {t("search.view")}
                  </a>{" "}
                  {downloaded.has(img.id) ? (
                    <span class="badge badge-anonimizada">{t("search.downloaded")}</span>
                  ) : (
                    <button type="button" class="small" onClick={() => fetchAll([img])} aria-label={`${t("search.download")} ${img.id}`}>
                      {t("search.download")}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </Table>
        </section>
      )}
    </div>
  );
}
