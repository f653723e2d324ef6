// Where an image's anonymized instance is in Alpes' own DICOMweb (WADO-RS), for the thumbnail
// and the viewer.
import type { Imagen } from "./types";

/** `/studies/{study}/series/{series}/instances/{sop}` of the image's anonymized instance; null while it has none. */
export function instancePath(img: Imagen): string | null {
  const a = img.anonimizada;
  if (!a?.study_uid || !a.series_uid || !a.sop_instance_uid) return null;
  return `/studies/${a.study_uid}/series/${a.series_uid}/instances/${a.sop_instance_uid}`;
}
