// A submitted form's fields.

/** The field `name` of `form` as text, trimmed ("" when the form has none). */
export function field(form: FormData, name: string): string {
  return String(form.get(name) ?? "").trim();
}
