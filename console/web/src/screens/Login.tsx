// The login form: POST /auth/login, with the server's answers in words (wrong credentials, a
// locked account and for how long, an ended session).
import { useState } from "preact/hooks";
import { errorOf } from "../api";
import { t } from "../i18n";
import { ended, start } from "../session";
import { useSignal } from "../signal";
import { Alert } from "../ui/Alert";

export function Login() {
  const why = useSignal(ended);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(e: Event) {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    setBusy(true);
    setError(null);
    try {
      const res = await fetch("/auth/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email: form.get("email"), password: form.get("password") }),
      });
      if (res.ok) {
        start(await res.json());
        location.hash = "#/";
        return;
      }
      const err = await errorOf(res);
      if (err.code === "account_locked") setError(t("login.locked", { min: Math.ceil((err.retryAfter ?? 60) / 60) }));
      else if (err.code === "invalid_credentials") setError(t("login.invalid"));
      else setError(t("error.generic", { message: err.message }));
    } catch (e) {
      setError(t("error.generic", { message: String(e) }));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div class="screen login">
      <h1>{t("login.title")}</h1>
      {why === "expired" && !error && <p class="notice" role="status">{t("login.expired")}</p>}
      <form onSubmit={submit}>
        <label>
          {t("login.email")}
          <input name="email" type="email" autocomplete="username" required />
        </label>
        <label>
          {t("login.password")}
          <input name="password" type="password" autocomplete="current-password" required />
        </label>
        <Alert error={error} />
        <button type="submit" disabled={busy}>
          {t("login.submit")}
        </button>
      </form>
    </div>
  );
}
