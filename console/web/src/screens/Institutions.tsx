// Admins: the institutions (GET /instituciones) and a new one (POST /instituciones). Their
// doctors and patients are on the patients screen; the API has the rest (webhooks, changes).
import { t } from "../i18n";
import { Alert } from "../ui/Alert";
import { allPages } from "../ui/allPages";
import { field } from "../ui/form";
import { send } from "../ui/send";
import { Table } from "../ui/Table";
import { useCommand } from "../ui/useCommand";
import { usePolling } from "../ui/usePolling";

interface Institucion {
  id: string;
  nombre: string;
  tipo: string;
  licencia: string;
  region: string | null;
  politica_no_registrados: string;
}

export function Institutions() {
  const { error, tick, run } = useCommand();
  const list = usePolling(() => allPages<Institucion>("/instituciones", "instituciones"), 30_000, [tick]);

  async function create(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const text = (k: string) => field(f, k);
    const body = { nombre: text("nombre"), tipo: text("tipo"), licencia: text("licencia"), email: text("email"), ...(text("region") ? { region: text("region") } : {}) };
    if (await run(() => send("POST", "/instituciones", body))) form.reset();
  }

  return (
    <div class="screen">
      <h1>{t("institutions.title")}</h1>
      <form class="filters" onSubmit={create}>
        <label>
          {t("users.name")}
          <input name="nombre" required />
        </label>
        <label>
          {t("institutions.kind")}
          <input name="tipo" defaultValue="hospital" required />
        </label>
        <label>
          {t("institutions.licence")}
          <input name="licencia" required />
        </label>
        <label>
          {t("login.email")}
          <input name="email" type="email" required />
        </label>
        <label>
          {t("institutions.region")}
          <input name="region" />
        </label>
        <button type="submit">{t("institutions.create")}</button>
      </form>
      <Alert error={error ?? list.error} />
      {(list.data?.length ?? 0) > 0 && (
        <Table caption={t("institutions.title")} headers={[t("users.name"), t("institutions.kind"), t("institutions.licence"), t("institutions.region"), t("institutions.policy"), "Id"]}>
          {list.data!.map((i) => (
            <tr key={i.id}>
              <td>{i.nombre}</td>
              <td>{i.tipo}</td>
              <td>{i.licencia}</td>
              <td>{i.region ?? "—"}</td>
              <td>{i.politica_no_registrados}</td>
              <td class="mono">{i.id}</td>
            </tr>
          ))}
        </Table>
      )}
    </div>
  );
}
