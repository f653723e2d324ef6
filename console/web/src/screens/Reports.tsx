// Providers (and admins): de-identification reports of their images (POST /reportes, in PDF or
// CSV, optionally of a time range), generated off the request path; the screen follows each
// one's state (GET /reportes/{id} as JSON) and downloads the file once it is ready.
import { useState } from "preact/hooks";
import { getJson } from "../api";
import { formatDate, t } from "../i18n";
import { Alert } from "../ui/Alert";
import { DateRange, rangeOf } from "../ui/DateRange";
import { field } from "../ui/form";
import { saveAs } from "../ui/save";
import { send } from "../ui/send";
import { useCommand } from "../ui/useCommand";
import { Table } from "../ui/Table";
import { usePolling } from "../ui/usePolling";

interface Reporte {
  id: string;
  formato: "pdf" | "csv";
  estado: "pendiente" | "listo" | "fallido";
  creado_at: number;
  imagenes: number | null;
  motivo?: string | null;
}

const KEY = "alpes.reports";

/** The ids of the reports asked for in this tab (the API lists none: each is read by its id). */
function kept(): string[] {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) ?? "[]") as string[];
  } catch {
    return [];
  }
}

export function Reports() {
  const [ids, setIds] = useState<string[]>(kept());
  const { error, run } = useCommand();
  const reports = usePolling(
    () => Promise.all(ids.map((id) => getJson<Reporte>(`/reportes/${encodeURIComponent(id)}`, { headers: { Accept: "application/json" } }))),
    3000,
    [ids.join()],
  );

  async function ask(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    await run(async () => {
      const range = rangeOf(f);
      const alcance = { creada_desde: range.desde, creada_hasta: range.hasta };
      const r = await send<Reporte>("POST", "/reportes", { formato: field(f, "formato"), alcance });
      if (r) {
        const next = [r.id, ...ids];
        sessionStorage.setItem(KEY, JSON.stringify(next));
        setIds(next);
      }
    });
  }

  return (
    <div class="screen">
      <h1>{t("reports.title")}</h1>
      <form class="filters" onSubmit={ask}>
        <label>
          {t("reports.format")}
          <select name="formato">
            <option value="pdf">PDF</option>
            <option value="csv">CSV</option>
          </select>
        </label>
        <DateRange />
        <button type="submit">{t("reports.ask")}</button>
      </form>
      <Alert error={error ?? reports.error} />
      {(reports.data?.length ?? 0) > 0 && (
        <Table caption={t("reports.title")} headers={[t("reports.asked"), t("reports.format"), t("images.state"), t("reports.images"), t("table.actions")]}>
          {reports.data!.map((r) => (
            <tr key={r.id}>
              <td>{formatDate(r.creado_at)}</td>
              <td>{r.formato.toUpperCase()}</td>
              <td>{t(`reports.${r.estado}`)}</td>
              <td class="num">{r.imagenes ?? "—"}</td>
              <td>
                {r.estado === "listo" && (
                  <button type="button" class="small" onClick={() => run(() => saveAs(`/reportes/${encodeURIComponent(r.id)}`, `alpes-report-${r.id}.${r.formato}`))}>
                    {t("search.download")}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </div>
  );
}
