// An error or notice, announced to screen readers as it appears.
import { ApiError } from "../api";
import { t } from "../i18n";

export function messageOf(e: unknown): string {
  if (e instanceof ApiError && e.status === 403) return t("error.forbidden");
  return t("error.generic", { message: e instanceof Error ? e.message : String(e) });
}

export function Alert(props: { error: unknown }) {
  if (!props.error) return null;
  return (
    <p class="alert" role="alert">
      {typeof props.error === "string" ? props.error : messageOf(props.error)}
    </p>
  );
}
