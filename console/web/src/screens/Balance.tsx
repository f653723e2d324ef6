// A provider's (or consumer's) balance and ledger, with the running balance drawn over time.
import { getJson, withQuery } from "../api";
import { formatDate, formatMoney, t } from "../i18n";
import { session } from "../session";
import type { Movimientos, Saldo } from "../types";
import { Alert } from "../ui/Alert";
import { LedgerChart } from "../ui/LedgerChart";
import { Table } from "../ui/Table";
import { usePolling } from "../ui/usePolling";

export function Balance() {
  const user = session.get()?.user ?? "";
  const saldo = usePolling(() => getJson<Saldo>(`/monetizacion/saldo/${encodeURIComponent(user)}`), 3000);
  const ledger = usePolling(() => getJson<Movimientos>(withQuery(`/monetizacion/movimientos/${encodeURIComponent(user)}`, { limit: 1000 })), 3000);
  const s = saldo.data;
  const moves = ledger.data?.movimientos ?? [];
  const money = (minor: number) => formatMoney(minor, s?.moneda ?? "EUR");

  return (
    <div class="screen">
      <h1>{t("balance.title")}</h1>
      <Alert error={saldo.error ?? ledger.error} />
      {s && (
        <dl class="figures" id="balance">
          {s.credito ? (
            <>
              <div>
                <dt>{t("balance.charged")}</dt>
                <dd data-testid="charged">{money(s.cargado_minor)}</dd>
              </div>
              <div>
                <dt>{t("balance.available")}</dt>
                <dd>{money(s.credito.disponible_minor)}</dd>
              </div>
            </>
          ) : (
            <>
              <div>
                <dt>{t("balance.pending")}</dt>
                <dd data-testid="pending">{money(s.saldo_pendiente)}</dd>
              </div>
              <div>
                <dt>{t("balance.accrued")}</dt>
                <dd data-testid="accrued">{money(s.devengado_minor)}</dd>
              </div>
              <div>
                <dt>{t("balance.paid")}</dt>
                <dd data-testid="paid">{money(s.pagado_minor)}</dd>
              </div>
              <div>
                <dt>{t("balance.uses")}</dt>
                <dd data-testid="uses">{s.usos}</dd>
              </div>
            </>
          )}
        </dl>
      )}
      {moves.length > 0 && <LedgerChart moves={moves} label={t("balance.chart")} />}
      <h2>{t("balance.ledger")}</h2>
      {ledger.data && moves.length === 0 && <p>{t("balance.none")}</p>}
      {moves.length > 0 && (
        <Table caption={t("balance.ledger")} headers={[t("balance.when"), t("balance.kind"), t("balance.amount"), t("balance.image")]}>
          {moves.map((m) => (
            <tr key={m.evento_id}>
              <td>{formatDate(m.ocurrido_at)}</td>
              <td>{m.tipo}</td>
              <td class="num">{formatMoney(m.importe_minor, m.moneda)}</td>
              <td class="mono">{m.imagen_id ?? ""}</td>
            </tr>
          ))}
        </Table>
      )}
    </div>
  );
}
