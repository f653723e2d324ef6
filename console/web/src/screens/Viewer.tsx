// One anonymized image in the DICOM viewer (`#/viewer/{id}`): its frames from WADO-RS, with
// window/level, zoom, pan, frame scrolling and length measurement. The pixels are data: a
// retrieval is metered and billed like a download, so the price is shown and confirmed first
// (an admin is never billed).
import { useEffect, useRef, useState } from "preact/hooks";
import { getJson } from "../api";
import { formatMoney, t } from "../i18n";
import { session } from "../session";
import type { ImagenDetalle } from "../types";
import { Alert } from "../ui/Alert";
import type { PrimaryTool, ViewerHandle } from "../viewer/cornerstone";
import { instancePath } from "../wado";

export function Viewer(props: { id: string }) {
  const [img, setImg] = useState<ImagenDetalle | null>(null);
  const [open, setOpen] = useState(false);
  const [tool, setTool] = useState<PrimaryTool>("windowLevel");
  const [error, setError] = useState<unknown>(null);
  const [ready, setReady] = useState(false);
  const element = useRef<HTMLDivElement>(null);
  const handle = useRef<ViewerHandle | null>(null);
  const billed = session.get()?.role !== "admin";

  useEffect(() => {
    getJson<ImagenDetalle>(`/imagenes/${encodeURIComponent(props.id)}`).then(setImg, setError);
  }, [props.id]);

  useEffect(() => {
    const instance = img && instancePath(img);
    if (!open || !instance || !element.current) return;
    let cancelled = false;
    const base = `${location.origin}${instance}`;
    const token = () => session.get()?.access ?? "";
    void import("../viewer/cornerstone")
      .then(async (v) => {
        const frames = await v.instanceFrames(base, token);
        const h = await v.mountViewer(element.current!, frames, token);
        if (cancelled) h.destroy();
        else {
          handle.current = h;
          setReady(true);
        }
      })
      .catch((e) => !cancelled && setError(e));
    return () => {
      cancelled = true;
      handle.current?.destroy();
      handle.current = null;
    };
  }, [open, img]);

  const choose = (next: PrimaryTool) => {
    setTool(next);
    handle.current?.setPrimaryTool(next);
  };

  return (
    <div class="screen">
      <h1>{t("viewer.title")}</h1>
      <p class="mono">{props.id}</p>
      <Alert error={error} />
      {img && !open && (
        <div class="actions">
          {billed && <span>{t("viewer.billed", { price: formatMoney(img.precio_minor, img.moneda) })}</span>}
          <button type="button" onClick={() => setOpen(true)}>
            {t("viewer.open")}
          </button>
        </div>
      )}
      {open && (
        <>
          <div class="actions" role="toolbar" aria-label={t("viewer.tools")}>
            <button type="button" aria-pressed={tool === "windowLevel"} onClick={() => choose("windowLevel")}>
              {t("viewer.windowLevel")}
            </button>
            <button type="button" aria-pressed={tool === "length"} onClick={() => choose("length")}>
              {t("viewer.length")}
            </button>
            <button type="button" onClick={() => handle.current?.reset()}>
              {t("viewer.reset")}
            </button>
            <span class="muted">{t("viewer.help")}</span>
          </div>
          <div class="viewer" ref={element} data-ready={ready ? "yes" : "no"} role="img" aria-label={`${t("viewer.title")} ${img?.modalidad ?? ""}`} />
        </>
      )}
    </div>
  );
}
