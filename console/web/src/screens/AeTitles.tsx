// The DICOM listener's calling AE titles (GET /dimse/aes), each mapped to the provider whose
// images it sends: a provider reads its own; an admin reads every one, maps one
// (PUT /dimse/aes/{ae}) and removes one. A change applies to the next association.
import { getJson } from "../api";
import { formatDate, t } from "../i18n";
import { session } from "../session";
import { Alert } from "../ui/Alert";
import { field } from "../ui/form";
import { send } from "../ui/send";
import { Table } from "../ui/Table";
import { useCommand } from "../ui/useCommand";
import { usePolling } from "../ui/usePolling";

interface TituloAe {
  titulo_ae: string;
  proveedor_id: string;
  actualizado_at: number;
}

export function AeTitles() {
  const { error, tick, run: command } = useCommand();
  const admin = session.get()?.role === "admin";
  const list = usePolling(() => getJson<{ titulos_ae: TituloAe[] }>("/dimse/aes"), 30_000, [tick]);

  const run = (method: string, ae: string, body?: unknown) => command(() => send(method, `/dimse/aes/${encodeURIComponent(ae)}`, body));

  return (
    <div class="screen">
      <h1>{t("ae.title")}</h1>
      {admin && (
        <form
          class="filters"
          onSubmit={(e) => {
            e.preventDefault();
            const form = e.currentTarget as HTMLFormElement;
            const f = new FormData(form);
            void run("PUT", field(f, "ae"), { proveedor_id: field(f, "proveedor") }).then((ok) => ok && form.reset());
          }}
        >
          <label>
            {t("ae.ae")}
            <input name="ae" required maxLength={16} pattern="[ -~]{1,16}" />
          </label>
          <label>
            {t("search.provider")}
            <input name="proveedor" required />
          </label>
          <button type="submit">{t("ae.map")}</button>
        </form>
      )}
      <Alert error={error ?? list.error} />
      {(list.data?.titulos_ae.length ?? 0) > 0 && (
        <Table id="aes" caption={t("ae.title")} headers={[t("ae.ae"), t("search.provider"), t("patients.moved"), t("table.actions")]}>
          {list.data!.titulos_ae.map((a) => (
            <tr key={a.titulo_ae}>
              <td class="mono">{a.titulo_ae}</td>
              <td class="mono">{a.proveedor_id}</td>
              <td>{formatDate(a.actualizado_at)}</td>
              <td>
                {admin && (
                  <button type="button" class="small" onClick={() => run("DELETE", a.titulo_ae)}>
                    {t("ae.remove")}
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
