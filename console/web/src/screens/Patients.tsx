// Patients and their consent (doctors: their own; providers: their institution's; admins:
// every institution's), without contact data, and the validation step the caller's role takes:
// a doctor validates a `pending` patient, then a provider of the institution (or an admin) one
// `validated_by_doctor`. The patient then confirms with their code. The server refuses any other
// step (409 `invalid_transition`), and says so here.
import { formatDate, t, type Key } from "../i18n";
import { session, type Role } from "../session";
import { Alert } from "../ui/Alert";
import { allPages } from "../ui/allPages";
import { send } from "../ui/send";
import { Table } from "../ui/Table";
import { useCommand } from "../ui/useCommand";
import { usePolling } from "../ui/usePolling";

type Consent = "pending" | "validated_by_doctor" | "validated_by_institution" | "full_access" | "revocado";

interface Paciente {
  id: string;
  institucion_id: string;
  medico_id: string;
  estado: Consent;
  id_paciente_seudonimo: string;
  creado_at: number;
  actualizado_at: number;
}

/** The consent state the caller's role validates, if any. */
export function validates(role: Role): Consent | null {
  if (role === "medico") return "pending";
  if (role === "proveedor" || role === "admin") return "validated_by_doctor";
  return null;
}

export function Patients() {
  const role = session.get()?.role ?? "consumidor";
  const { error, tick, run } = useCommand();
  const list = usePolling(async () => ({ pacientes: await allPages<Paciente>("/pacientes", "pacientes") }), 10_000, [tick]);
  const step = validates(role);

  const validate = (id: string) => run(() => send("POST", `/pacientes/${encodeURIComponent(id)}/validar`));

  const rows = list.data?.pacientes ?? [];
  return (
    <div class="screen">
      <h1>{t("patients.title")}</h1>
      <Alert error={error ?? list.error} />
      {list.data && rows.length === 0 && <p>{t("patients.none")}</p>}
      {rows.length > 0 && (
        <Table id="patients" caption={t("patients.title")} headers={[t("patients.pseudonym"), t("patients.doctor"), t("patients.consent"), t("patients.registered"), t("patients.moved"), t("table.actions")]}>
          {rows.map((p) => (
            <tr key={p.id} data-id={p.id}>
              <td class="mono">{p.id_paciente_seudonimo}</td>
              <td class="mono">{p.medico_id}</td>
              <td>
                <span class={`badge consent-${p.estado}`}>{t(`consent.${p.estado}` as Key)}</span>
              </td>
              <td>{formatDate(p.creado_at)}</td>
              <td>{formatDate(p.actualizado_at)}</td>
              <td>
                {step === p.estado && (
                  <button type="button" class="small" onClick={() => validate(p.id)}>
                    {t("patients.validate")}
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
