// The audit trail (admins): filters by actor, action, outcome, target and request id.
import { useState } from "preact/hooks";
import { getJson, withQuery } from "../api";
import { formatDate, t } from "../i18n";
import type { Registros } from "../types";
import { Alert } from "../ui/Alert";
import { field } from "../ui/form";
import { Table } from "../ui/Table";
import { usePolling } from "../ui/usePolling";

const ACTIONS = ["login", "upload", "anonymization", "download", "payment", "consumer_terms", "user_create", "token_refresh", "logout", "api_key_create", "api_key_revoke", "reanonymize", "audit_read", "report_create", "report_read", "admin_read", "access"];

type Filters = Record<"actor" | "accion" | "resultado" | "objetivo" | "solicitud_http_id", string>;

export function Audit() {
  const [filters, setFilters] = useState<Filters>({ actor: "", accion: "", resultado: "", objetivo: "", solicitud_http_id: "" });
  const trail = usePolling(() => getJson<Registros>(withQuery("/auditoria", { ...filters, limit: 200 })), 5000, [JSON.stringify(filters)]);

  function apply(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const v = (k: keyof Filters) => field(f, k);
    setFilters({ actor: v("actor"), accion: v("accion"), resultado: v("resultado"), objetivo: v("objetivo"), solicitud_http_id: v("solicitud_http_id") });
  }

  const rows = trail.data?.registros ?? [];
  return (
    <div class="screen">
      <h1>{t("audit.title")}</h1>
      <form class="filters" onSubmit={apply}>
        <label>
          {t("audit.actor")}
          <input name="actor" />
        </label>
        <label>
          {t("audit.action")}
          <select name="accion">
            <option value="">{t("audit.any")}</option>
            {ACTIONS.map((a) => (
              <option value={a}>{a}</option>
            ))}
          </select>
        </label>
        <label>
          {t("audit.outcome")}
          <select name="resultado">
            <option value="">{t("audit.any")}</option>
            <option value="ok">ok</option>
            <option value="denied">denied</option>
            <option value="error">error</option>
          </select>
        </label>
        <label>
          {t("audit.target")}
          <input name="objetivo" />
        </label>
        <label>
          {t("audit.request")}
          <input name="solicitud_http_id" />
        </label>
        <button type="submit">{t("audit.filter")}</button>
      </form>
      <Alert error={trail.error} />
      {rows.length > 0 && (
        <Table id="audit" caption={t("audit.title")} headers={[t("audit.when"), t("audit.actor"), t("audit.action"), t("audit.target"), t("audit.route"), t("audit.outcome"), t("audit.status")]}>
          {rows.map((r) => (
            <tr key={r.evento_id} data-action={r.accion}>
              <td>{formatDate(r.ocurrido_at)}</td>
              <td class="mono">{r.actor}</td>
              <td>{r.accion}</td>
              <td class="mono">{r.objetivo ?? ""}</td>
              <td class="mono">{r.ruta ?? ""}</td>
              <td>{r.resultado}</td>
              <td>{r.estado_http ?? ""}</td>
            </tr>
          ))}
        </Table>
      )}
    </div>
  );
}
