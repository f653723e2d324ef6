// Admins: the users (by role), a consumer's approval and credit (PUT
// /monetizacion/consumidores/{id}), and the API keys (created, shown once, revoked).
import { useState } from "preact/hooks";
import { getJson } from "../api";
import { formatDate, t, toMinor } from "../i18n";
import { Alert } from "../ui/Alert";
import { allPages } from "../ui/allPages";
import { send } from "../ui/send";
import { Table } from "../ui/Table";
import { useCommand } from "../ui/useCommand";
import { usePolling } from "../ui/usePolling";

interface Usuario {
  id: string;
  nombre: string | null;
  rol: string;
  organizacion: string | null;
  creado_at: number;
}

interface Clave {
  id: string;
  nombre: string;
  rol: string;
  usuario_id: string;
  creada_por: string;
  creada_at: number;
  revocada_at: number | null;
  usada_at: number | null;
}

const ROLES = ["proveedor", "consumidor", "admin", "medico"];

function Approve(props: { id: string; done: () => void }) {
  const { error, run } = useCommand();
  async function submit(e: Event) {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const moneda = String(f.get("moneda"));
    const terms = { verificado: f.get("verificado") === "on", limite_credito_minor: toMinor(Number(f.get("limite")), moneda), moneda };
    if (await run(() => send("PUT", `/monetizacion/consumidores/${encodeURIComponent(props.id)}`, terms))) props.done();
  }
  return (
    <form class="inline" onSubmit={submit}>
      <label class="check">
        <input type="checkbox" name="verificado" defaultChecked />
        {t("users.verified")}
      </label>
      <label>
        {t("users.credit")}
        <input name="limite" type="number" min="0" step="0.01" defaultValue="100" required />
      </label>
      <label>
        {t("users.currency")}
        <input name="moneda" defaultValue="EUR" pattern="[A-Z]{3}" required size={4} />
      </label>
      <button type="submit" class="small">
        {t("users.approve")}
      </button>
      <Alert error={error} />
    </form>
  );
}

function ApiKeys() {
  const { error, tick, run } = useCommand();
  const [created, setCreated] = useState<string | null>(null);
  const keys = usePolling(() => getJson<{ api_keys: Clave[] }>("/api-keys"), 30_000, [tick]);

  async function create(e: Event) {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    const ok = await run(async () => {
      const answer = await send<{ key: string }>("POST", "/api-keys", { nombre: f.get("nombre"), rol: f.get("rol"), usuario_id: f.get("usuario_id") });
      setCreated(answer?.key ?? null);
    });
    if (ok) form.reset();
  }

  const revoke = (id: string) => run(() => send("DELETE", `/api-keys/${encodeURIComponent(id)}`));

  return (
    <section aria-labelledby="keys">
      <h2 id="keys">{t("keys.title")}</h2>
      <form class="filters" onSubmit={create}>
        <label>
          {t("keys.name")}
          <input name="nombre" required />
        </label>
        <label>
          {t("keys.role")}
          <select name="rol">
            {ROLES.map((r) => (
              <option value={r}>{r}</option>
            ))}
          </select>
        </label>
        <label>
          {t("keys.user")}
          <input name="usuario_id" required />
        </label>
        <button type="submit">{t("keys.create")}</button>
      </form>
      {created && (
        <p class="notice" role="status">
          {t("keys.shownOnce")} <code class="mono">{created}</code>
        </p>
      )}
      <Alert error={error ?? keys.error} />
      {(keys.data?.api_keys.length ?? 0) > 0 && (
        <Table caption={t("keys.title")} headers={[t("keys.name"), t("keys.role"), t("keys.user"), t("keys.created"), t("keys.used"), t("keys.revoked"), t("table.actions")]}>
          {keys.data!.api_keys.map((k) => (
            <tr key={k.id}>
              <td>{k.nombre}</td>
              <td>{k.rol}</td>
              <td class="mono">{k.usuario_id}</td>
              <td>{formatDate(k.creada_at)}</td>
              <td>{k.usada_at ? formatDate(k.usada_at) : "—"}</td>
              <td>{k.revocada_at ? formatDate(k.revocada_at) : "—"}</td>
              <td>
                {!k.revocada_at && (
                  <button type="button" class="small" onClick={() => revoke(k.id)}>
                    {t("keys.revoke")}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </section>
  );
}

export function Users() {
  const [rol, setRol] = useState("");
  const [approving, setApproving] = useState<string | null>(null);
  const users = usePolling(() => allPages<Usuario>("/usuarios", "usuarios", { rol: rol || undefined }), 30_000, [rol]);
  return (
    <div class="screen">
      <h1>{t("users.title")}</h1>
      <div class="filters">
        <label>
          {t("keys.role")}
          <select value={rol} onChange={(e) => setRol(e.currentTarget.value)}>
            <option value="">{t("audit.any")}</option>
            {ROLES.map((r) => (
              <option value={r}>{r}</option>
            ))}
          </select>
        </label>
      </div>
      <Alert error={users.error} />
      {(users.data?.length ?? 0) > 0 && (
        <Table id="users" caption={t("users.title")} headers={[t("users.name"), t("keys.role"), t("users.organization"), t("users.created"), "Id", t("table.actions")]}>
          {users.data!.map((u) => (
            <tr key={u.id}>
              <td>{u.nombre ?? "—"}</td>
              <td>{u.rol}</td>
              <td>{u.organizacion ?? "—"}</td>
              <td>{formatDate(u.creado_at)}</td>
              <td class="mono">{u.id}</td>
              <td>
                {u.rol === "consumidor" &&
                  (approving === u.id ? (
                    <Approve id={u.id} done={() => setApproving(null)} />
                  ) : (
                    <button type="button" class="small" onClick={() => setApproving(u.id)}>
                      {t("users.terms")}
                    </button>
                  ))}
              </td>
            </tr>
          ))}
        </Table>
      )}
      <ApiKeys />
    </div>
  );
}
