// The console: the login screen, or the signed-in shell (header, the role's navigation and the
// screen the URL's hash names).
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { getJson } from "./api";
import { lang, setLang, t } from "./i18n";
import { current, LABEL, SCREENS, viewed, type Screen } from "./routes";
import { Audit } from "./screens/Audit";
import { Balance } from "./screens/Balance";
import { Images } from "./screens/Images";
import { Login } from "./screens/Login";
import { AeTitles } from "./screens/AeTitles";
import { Health } from "./screens/Health";
import { Imports } from "./screens/Imports";
import { Institutions } from "./screens/Institutions";
import { Patients } from "./screens/Patients";
import { Payments } from "./screens/Payments";
import { Reports } from "./screens/Reports";
import { Users } from "./screens/Users";
import { Search } from "./screens/Search";
import { Upload } from "./screens/Upload";
import { Viewer } from "./screens/Viewer";
import { connected, startLive } from "./live";
import { logout, session, type Role } from "./session";
import { useSignal } from "./signal";
import "./styles.css";

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function Home(props: { role: Role }) {
  return (
    <div class="screen">
      <h1>{t("home.title")}</h1>
      <p>{t("home.role", { role: t(`role.${props.role}`) })}</p>
    </div>
  );
}

const VIEWS: Record<Screen, () => preact.JSX.Element> = {
  upload: Upload,
  images: Images,
  balance: Balance,
  search: Search,
  audit: Audit,
  patients: Patients,
  users: Users,
  payments: Payments,
  institutions: Institutions,
  health: Health,
  reports: Reports,
  imports: Imports,
  ae: AeTitles,
};

function LangSwitch() {
  const l = useSignal(lang);
  return (
    <label class="lang">
      <span class="visually-hidden">{t("language")}</span>
      <select value={l} onChange={(e) => setLang(e.currentTarget.value as "es" | "en")}>
        <option value="es">Español</option>
        <option value="en">English</option>
      </select>
    </label>
  );
}

/** The user's name (GET /usuarios/{id}), or the id until it is read. */
function UserName(props: { id: string }) {
  const [name, setName] = useState<string | null>(null);
  useEffect(() => {
    void getJson<{ nombre?: string }>(`/usuarios/${encodeURIComponent(props.id)}`)
      .then((u) => setName(u.nombre ?? null))
      .catch(() => setName(null));
  }, [props.id]);
  return <>{name ?? props.id}</>;
}

function LiveBadge() {
  const on = useSignal(connected);
  const s = useSignal(session);
  if (!s || (s.role !== "proveedor" && s.role !== "admin")) return null;
  return (
    <span class={on ? "live on" : "live"} role="status">
      {t(on ? "live.on" : "live.off")}
    </span>
  );
}

function App() {
  const s = useSignal(session);
  useSignal(lang);
  const hash = useHash();
  useEffect(() => {
    document.documentElement.lang = lang.get();
  }, []);
  if (!s) {
    return (
      <>
        <header class="bar">
          <strong class="brand">{t("app")}</strong>
          <LangSwitch />
        </header>
        <main id="main" tabIndex={-1}>
          <Login />
        </main>
      </>
    );
  }
  if (s.role === "proveedor" || s.role === "admin") startLive();
  const image = viewed(s.role, hash);
  const screen = image ? null : current(s.role, hash);
  const View = screen ? VIEWS[screen] : null;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        {t("skip")}
      </a>
      <header class="bar">
        <strong class="brand">{t("app")}</strong>
        <nav aria-label="Alpes">
          <ul>
            {SCREENS[s.role].map((name) => (
              <li>
                <a href={`#/${name}`} aria-current={name === screen ? "page" : undefined}>
                  {t(LABEL[name])}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <LiveBadge />
        <span class="who">
          <UserName id={s.user} /> · {t(`role.${s.role}`)}
        </span>
        <LangSwitch />
        <button type="button" onClick={() => void logout()}>
          {t("nav.logout")}
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {image ? <Viewer key={image} id={image} /> : View ? <View key={screen} /> : <Home role={s.role} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
