// The running balance over time (uPlot): usages and charges add, payments subtract, oldest first.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Movimiento } from "../types";

const SIGN: Record<string, number> = { uso: 1, cargo: 1, pago: -1, pago_rechazado: 1 };

/** The running balance as steps: zero just before the first movement, each movement, and now. */
export function series(moves: Movimiento[], now = Date.now()): [number[], number[]] {
  const sorted = [...moves].sort((a, b) => a.ocurrido_at - b.ocurrido_at);
  let total = 0;
  const first = sorted[0]?.ocurrido_at ?? now;
  const xs: number[] = [first / 1000 - 60];
  const ys: number[] = [0];
  for (const m of sorted) {
    total += (SIGN[m.tipo] ?? 0) * m.importe_minor;
    xs.push(m.ocurrido_at / 1000);
    ys.push(total / 100);
  }
  xs.push(Math.max(now, first) / 1000);
  ys.push(total / 100);
  return [xs, ys];
}

export function LedgerChart(props: { moves: Movimiento[]; label: string }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current) return;
    const width = Math.max(320, el.current.clientWidth);
    const plot = new uPlot(
      {
        width,
        height: 220,
        series: [{}, { label: props.label, stroke: "#2563eb", fill: "rgba(37,99,235,0.12)", width: 2, paths: uPlot.paths.stepped?.({ align: 1 }) }],
        axes: [{}, {}],
        legend: { show: false },
      },
      series(props.moves),
      el.current,
    );
    return () => plot.destroy();
  }, [props.moves, props.label]);
  return <figure class="chart" ref={el} role="img" aria-label={props.label} />;
}
