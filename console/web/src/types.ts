// The shapes of the API answers the console reads (the OpenAPI document at /openapi.json has all).
import type { EstadoImagen } from "./ui/Estado";

export interface Imagen {
  id: string;
  proveedor_id: string;
  estado: EstadoImagen;
  creada_at: number;
  modalidad: string | null;
  region_anatomica: string | null;
  motivo_rechazo: string | null;
  anonimizada: {
    tamano_bytes: number;
    study_uid: string | null;
    series_uid: string | null;
    sop_instance_uid: string | null;
    frames: number;
  } | null;
}

export interface Imagenes {
  imagenes: Imagen[];
  next_cursor: string | null;
}

export interface ImagenDetalle extends Imagen {
  precio_minor: number;
  moneda: string;
}

export interface Saldo {
  usuario_id: string;
  moneda: string;
  saldo_pendiente: number;
  devengado_minor: number;
  pagado_minor: number;
  usos: number;
  cargado_minor: number;
  cargos: number;
  credito: { verificado: boolean; limite_credito_minor: number; moneda: string; disponible_minor: number } | null;
  actualizado_at: number | null;
}

export interface Movimiento {
  evento_id: string;
  tipo: string;
  importe_minor: number;
  moneda: string;
  ocurrido_at: number;
  imagen_id: string | null;
  contraparte: string | null;
}

export interface Movimientos {
  movimientos: Movimiento[];
  next_cursor: string | null;
}

export interface Registro {
  evento_id: string;
  ocurrido_at: number;
  actor: string;
  rol_actor: string | null;
  accion: string;
  objetivo: string | null;
  ruta: string | null;
  resultado: string;
  estado_http: number | null;
  motivo: string | null;
  solicitud_http_id: string | null;
}

export interface Registros {
  registros: Registro[];
  next_cursor: string | null;
}
