// Providers (and admins): import jobs (GET /importaciones) that pull studies from a PACS over
// DICOMweb (POST /importaciones with the QIDO-RS keys of the studies), their counts, and
// cancellation. The source's credentials, when it needs them, go through the API.
import { formatDate, t } from "../i18n";
import { Alert } from "../ui/Alert";
import { allPages } from "../ui/allPages";
import { field } from "../ui/form";
import { send } from "../ui/send";
import { Table } from "../ui/Table";
import { useCommand } from "../ui/useCommand";
import { usePolling } from "../ui/usePolling";

interface Importacion {
  id: string;
  proveedor_id: string;
  tipo: string;
  estado: string;
  motivo: string | null;
  conteos: Record<string, number>;
  creada_at: number;
}

// The final states (domain/src/import.rs: ImportState::is_final).
const FINAL = new Set(["completed", "failed", "cancelled"]);

export function Imports() {
  const { error, tick, run } = useCommand();
  const jobs = usePolling(() => allPages<Importacion>("/importaciones", "importaciones", {}, 100), 5000, [tick]);

  async function create(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const consulta: Record<string, string> = {};
    for (const pair of field(f, "consulta").split(/[\n&]/)) {
      const [k, ...v] = pair.split("=");
      if (k?.trim()) consulta[k.trim()] = v.join("=").trim();
    }
    if (await run(() => send("POST", "/importaciones", { tipo: "dicomweb", url: field(f, "url"), consulta }))) form.reset();
  }

  const cancel = (id: string) => run(() => send("POST", `/importaciones/${encodeURIComponent(id)}/cancelar`));

  return (
    <div class="screen">
      <h1>{t("imports.title")}</h1>
      <form class="filters" onSubmit={create}>
        <label>
          {t("imports.url")}
          <input name="url" type="url" placeholder="https://pacs.example/dicom-web" required size={40} />
        </label>
        <label>
          {t("imports.query")}
          <input name="consulta" placeholder="ModalitiesInStudy=CT&StudyDate=20260101-20261231" size={40} />
        </label>
        <button type="submit">{t("imports.create")}</button>
      </form>
      <Alert error={error ?? jobs.error} />
      {(jobs.data?.length ?? 0) > 0 && (
        <Table caption={t("imports.title")} headers={[t("reports.asked"), t("imports.source"), t("images.state"), t("imports.counts"), t("images.reason"), t("table.actions")]}>
          {jobs.data!.map((j) => (
            <tr key={j.id}>
              <td>{formatDate(j.creada_at)}</td>
              <td>{j.tipo}</td>
              <td>{j.estado}</td>
              <td class="mono">
                {Object.entries(j.conteos)
                  .map(([k, v]) => `${k} ${v}`)
                  .join(" · ")}
              </td>
              <td>{j.motivo ?? ""}</td>
              <td>
                {!FINAL.has(j.estado) && (
                  <button type="button" class="small" onClick={() => cancel(j.id)}>
                    {t("imports.cancel")}
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
