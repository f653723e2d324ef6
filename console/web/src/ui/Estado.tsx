// An image's state as a labelled badge.
import { t } from "../i18n";

export type EstadoImagen = "registrada" | "anonimizada" | "rechazada";

export function Estado(props: { estado: EstadoImagen }) {
  return <span class={`badge badge-${props.estado}`}>{t(`estado.${props.estado}`)}</span>;
}
