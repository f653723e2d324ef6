// Admins: the process's readiness (GET /ready: broker, store, blobs, consumer groups) and its
// main metrics (GET /metrics, Prometheus text, sampled every 5 s while the screen is open):
// requests/s and events produced/s as a chart, rejections and consumer lag as figures.
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import { authorized, errorOf } from "../api";
import { t } from "../i18n";
import { Alert } from "../ui/Alert";
import { usePolling } from "../ui/usePolling";

/** The sum of every sample of `name` (any labels) in a Prometheus text exposition. */
export function total(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) || (line[name.length] !== "{" && line[name.length] !== " ")) continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

/** A dependency's state as a line: a plain value, or an object's `status` or its entries. */
function shown(v: unknown): string {
  if (typeof v !== "object" || v === null) return String(v);
  const o = v as Record<string, unknown>;
  return typeof o.status === "string" ? o.status : Object.entries(o).map(([k, x]) => `${k}: ${String(x)}`).join(" · ");
}

interface Sample {
  at: number;
  requests: number;
  events: number;
  rejections: number;
  lag: number;
}

function Chart(props: { samples: Sample[]; label: string }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current || props.samples.length < 2) return;
    const rates = props.samples.slice(1).map((s, i) => {
      const prev = props.samples[i]!;
      const dt = Math.max(0.001, (s.at - prev.at) / 1000);
      return [s.at / 1000, (s.requests - prev.requests) / dt, (s.events - prev.events) / dt];
    });
    const plot = new uPlot(
      {
        width: Math.max(320, el.current.clientWidth),
        height: 220,
        series: [{}, { label: t("health.requests"), stroke: "#2563eb", width: 2 }, { label: t("health.events"), stroke: "#16a34a", width: 2 }],
      },
      [rates.map((r) => r[0]!), rates.map((r) => r[1]!), rates.map((r) => r[2]!)],
      el.current,
    );
    return () => plot.destroy();
  }, [props.samples]);
  return <figure class="chart" ref={el} role="img" aria-label={props.label} />;
}

export function Health() {
  const ready = usePolling(async () => {
    const res = await authorized("/ready");
    return (await res.json()) as Record<string, unknown>;
  }, 5000);
  const [samples, setSamples] = useState<Sample[]>([]);
  const metrics = usePolling(async () => {
    const res = await authorized("/metrics");
    if (!res.ok) throw await errorOf(res); // a gateway may keep /metrics to the monitoring network
    const text = await res.text();
    const s: Sample = {
      at: Date.now(),
      requests: total(text, "alpes_http_requests_total"),
      events: total(text, "alpes_events_produced_total"),
      rejections: total(text, "alpes_rejections_total"),
      lag: total(text, "alpes_consumer_lag"),
    };
    setSamples((old) => [...old.slice(-119), s]);
    return s;
  }, 5000);
  const r = ready.data;
  const consumers = (r?.consumers ?? {}) as Record<string, string>;
  const last = metrics.data;
  return (
    <div class="screen">
      <h1>{t("health.title")}</h1>
      <Alert error={ready.error ?? metrics.error} />
      {r && (
        <dl class="figures" id="health">
          {Object.entries(r)
            .filter(([k]) => k !== "consumers")
            .map(([k, v]) => (
              <div key={k}>
                <dt>{k}</dt>
                <dd class="small-figure">{shown(v)}</dd>
              </div>
            ))}
        </dl>
      )}
      {last && (
        <dl class="figures">
          <div>
            <dt>{t("health.rejections")}</dt>
            <dd>{last.rejections}</dd>
          </div>
          <div>
            <dt>{t("health.lag")}</dt>
            <dd>{last.lag}</dd>
          </div>
        </dl>
      )}
      <Chart samples={samples} label={t("health.chart")} />
      <h2>{t("health.consumers")}</h2>
      <ul>
        {Object.entries(consumers).map(([group, state]) => (
          <li key={group}>
            <span class="mono">{group}</span>: {state}
          </li>
        ))}
      </ul>
    </div>
  );
}
