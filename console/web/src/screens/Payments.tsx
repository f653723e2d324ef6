// Admins (finance): pay a provider out of its pending balance (POST /monetizacion/pagar, refused
// above the balance or for a reference already paid), and the consumer–provider pairs by volume
// (GET /monetizacion/pares), where a provider paying itself through its own consumers shows.
import { useState } from "preact/hooks";
import { getJson } from "../api";
import { formatMoney, t, toMinor } from "../i18n";
import type { Saldo } from "../types";
import { Alert } from "../ui/Alert";
import { send } from "../ui/send";
import { Table } from "../ui/Table";
import { useCommand } from "../ui/useCommand";
import { usePolling } from "../ui/usePolling";

interface Par {
  consumidor_id: string;
  consumidor_organizacion: string | null;
  proveedor_id: string;
  proveedor_organizacion: string | null;
  moneda: string;
  cargos: number;
  importe_minor: number;
}

export function Payments() {
  const [provider, setProvider] = useState("");
  const [saldo, setSaldo] = useState<Saldo | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const { error, run } = useCommand();
  const pairs = usePolling(() => getJson<{ pares: Par[] }>("/monetizacion/pares"), 60_000);

  async function look(e: Event) {
    e.preventDefault();
    setDone(null);
    await run(async () => setSaldo(await getJson<Saldo>(`/monetizacion/saldo/${encodeURIComponent(provider)}`)));
  }

  async function pay(e: Event) {
    e.preventDefault();
    if (!saldo) return;
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const payment = {
      usuario_id: saldo.usuario_id,
      importe_minor: toMinor(Number(f.get("importe")), saldo.moneda),
      moneda: saldo.moneda,
      referencia: String(f.get("referencia")),
    };
    if (await run(() => send("POST", "/monetizacion/pagar", payment))) setDone(t("payments.sent"));
  }

  return (
    <div class="screen">
      <h1>{t("payments.title")}</h1>
      <form class="filters" onSubmit={look}>
        <label>
          {t("search.provider")}
          <input value={provider} onInput={(e) => setProvider(e.currentTarget.value.trim())} required />
        </label>
        <button type="submit">{t("payments.look")}</button>
      </form>
      {saldo && (
        <form class="filters" onSubmit={pay}>
          <p>
            {t("balance.pending")}: <strong>{formatMoney(saldo.saldo_pendiente, saldo.moneda)}</strong>
          </p>
          <label>
            {t("balance.amount")}
            <input name="importe" type="number" min="0.01" step="0.01" required />
          </label>
          <label>
            {t("payments.reference")}
            <input name="referencia" required />
          </label>
          <button type="submit">{t("payments.pay")}</button>
        </form>
      )}
      {done && (
        <p class="notice" role="status">
          {done}
        </p>
      )}
      <Alert error={error ?? pairs.error} />
      <h2>{t("payments.pairs")}</h2>
      {(pairs.data?.pares.length ?? 0) > 0 && (
        <Table caption={t("payments.pairs")} headers={[t("payments.consumer"), t("search.provider"), t("balance.uses"), t("balance.amount")]}>
          {pairs.data!.pares.map((p) => (
            <tr key={`${p.consumidor_id}-${p.proveedor_id}-${p.moneda}`}>
              <td>{p.consumidor_organizacion ?? p.consumidor_id}</td>
              <td>{p.proveedor_organizacion ?? p.proveedor_id}</td>
              <td class="num">{p.cargos}</td>
              <td class="num">{formatMoney(p.importe_minor, p.moneda)}</td>
            </tr>
          ))}
        </Table>
      )}
    </div>
  );
}
