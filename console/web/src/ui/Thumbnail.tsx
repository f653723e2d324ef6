// An anonymized image's thumbnail (WADO-RS `.../thumbnail`, at most 128 pixels a side): a free
// preview, never metered. Fetched with the bearer token and shown from a blob: URL.
import { useEffect, useState } from "preact/hooks";
import { authorized } from "../api";
import type { Imagen } from "../types";
import { instancePath } from "../wado";

export function Thumbnail(props: { img: Imagen; label: string }) {
  const [url, setUrl] = useState<string | null>(null);
  const instance = instancePath(props.img);
  const path = instance && `${instance}/thumbnail`;
  useEffect(() => {
    if (!path) return;
    let made: string | null = null;
    let live = true;
    void authorized(path, { headers: { Accept: "image/png" } }).then(async (res) => {
      if (!res.ok || !live) return;
      made = URL.createObjectURL(await res.blob());
      setUrl(made);
    });
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [path]);
  return url ? <img class="thumb" src={url} alt={props.label} width={64} height={64} /> : <span class="thumb" aria-hidden="true" />;
}
