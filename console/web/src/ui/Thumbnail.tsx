// An anonymized image's thumbnail (WADO-RS `.../thumbnail`, at most 128 pixels a side): a free
// preview, never metered. Fetched with the bearer token and shown from a blob: URL.
import { useEffect, useState } from "preact/hooks";
import { authorized } from "../api";
import type { Imagen } from "../types";

export function thumbnailPath(img: Imagen): string | null {
  const a = img.anonimizada;
  if (!a?.study_uid || !a.series_uid || !a.sop_instance_uid) return null;
  return `/studies/${a.study_uid}/series/${a.series_uid}/instances/${a.sop_instance_uid}/thumbnail`;
}

export function Thumbnail(props: { img: Imagen; label: string }) {
  const [url, setUrl] = useState<string | null>(null);
  const path = thumbnailPath(props.img);
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
