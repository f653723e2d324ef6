// A "from"/"to" pair of date inputs (named `desde` and `hasta`) and the range they give: from
// midnight UTC of the first day (inclusive) to midnight UTC after the last (exclusive), in ms,
// as the API's `*_desde`/`*_hasta` filters take them.
import { t } from "../i18n";
import { field } from "./form";

export function DateRange() {
  return (
    <>
      <label>
        {t("search.from")}
        <input name="desde" type="date" />
      </label>
      <label>
        {t("search.to")}
        <input name="hasta" type="date" />
      </label>
    </>
  );
}

const midnight = (value: string, days: number) => (value ? Date.parse(`${value}T00:00:00Z`) + days * 86_400_000 : undefined);

/** The range a form's DateRange gives (either end may be open). */
export function rangeOf(form: FormData): { desde: number | undefined; hasta: number | undefined } {
  return { desde: midnight(field(form, "desde"), 0), hasta: midnight(field(form, "hasta"), 1) };
}
