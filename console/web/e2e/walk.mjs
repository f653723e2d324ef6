// The console's end-to-end walk in headless Chromium (Playwright), against a running Alpes. It is
// run by alpes/tests/console.rs, which starts the platform, creates the accounts and the folder of
// DICOM files, and passes them in the environment:
//
//   ALPES_URL, ALPES_CHROMIUM, ALPES_FOLDER (a folder of DICOM files, subfolders included),
//   ALPES_FILES (how many files it holds), ALPES_PROVIDER / ALPES_CONSUMER / ALPES_ADMIN /
//   ALPES_DOCTOR ("email password"; the doctor has one pending patient), ALPES_SHOTS (where the
//   screenshots go).
//
// 1. The provider logs in, uploads the folder, sees each file's progress and then every image
//    anonymized; its balance shows nothing earned yet.
// 2. The consumer finds the images, sees their price and downloads one (a DICOM file).
// 3. The provider's balance rises on screen.
// 4. An admin finds the download in the audit trail.
// 5. A doctor validates their patient's consent, then the admin validates it for the institution.
// Every main screen is checked with axe-core (no serious or critical violation), and no
// Content-Security-Policy violation may be reported by the browser. Each step prints a JSON line.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const URL = env("ALPES_URL");
const FILES = Number(env("ALPES_FILES"));
const SHOTS = env("ALPES_SHOTS");
// "email password": the password is everything after the first space.
const [provider, consumer, admin, doctor] = ["ALPES_PROVIDER", "ALPES_CONSUMER", "ALPES_ADMIN", "ALPES_DOCTOR"].map((n) => {
  const v = env(n);
  const at = v.indexOf(" ");
  return [v.slice(0, at), v.slice(at + 1)];
});
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const TIMEOUT = 60_000;

const say = (step, extra = {}) => console.log(JSON.stringify({ step, ...extra }));
const fail = (msg) => {
  throw new Error(msg);
};

const browser = await chromium.launch({
  executablePath: env("ALPES_CHROMIUM"),
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const cspViolations = [];
const axeFindings = [];

async function newPage(locale) {
  const context = await browser.newContext({ locale, viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  // A page loaded with the `alpes.walk.late-paint` mark paints late (as on a loaded machine): its
  // first effects run after the requests the first render started may have been answered.
  await context.addInitScript(() => {
    if (sessionStorage.getItem("alpes.walk.late-paint") === null) return;
    sessionStorage.removeItem("alpes.walk.late-paint");
    const raf = window.requestAnimationFrame.bind(window);
    window.requestAnimationFrame = (fn) => raf(() => setTimeout(() => raf(fn), 400));
  });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) cspViolations.push({ text: m.text(), url: page.url() });
  });
  page.on("pageerror", (e) => cspViolations.push({ text: `page error: ${e.message}`, url: page.url() }));
  page.on("dialog", (d) => d.accept());
  return page;
}

async function axe(page, screen) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of bad) axeFindings.push(`${screen}: ${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  say("axe", { screen, violations: result.violations.length, serious_or_critical: bad.length });
}

async function login(page, [email, password], shot) {
  await page.goto(`${URL}/`);
  await page.getByLabel(/correo|email/i).fill(email);
  await page.getByLabel(/contraseña|password/i).fill(password);
  if (shot) {
    await axe(page, "login");
    await page.screenshot({ path: join(SHOTS, "login.png") });
  }
  await page.getByRole("button", { name: /entrar|log in/i }).click();
  await page.locator("nav").waitFor();
}

async function logout(page) {
  await page.getByRole("button", { name: /cerrar sesión|log out/i }).click();
  await page.getByRole("button", { name: /entrar|log in/i }).waitFor();
}

/** The provider's accrued earnings as the balance screen shows them (text). */
async function accrued(page) {
  await page.goto(`${URL}/#/balance`);
  return (await page.getByTestId("accrued").textContent()) ?? "";
}

let page;
try {
  page = await newPage("es-ES");
  // 0. The login screen: English and back; a locked account is told so, and for how long.
  await page.goto(`${URL}/`);
  await page.getByRole("combobox").selectOption("en");
  await page.getByRole("heading", { name: "Log in to Alpes" }).waitFor();
  await page.getByRole("combobox").selectOption("es");
  await page.getByRole("heading", { name: "Entrar en Alpes" }).waitFor();
  const [lockedEmail, lockedPassword] = env("ALPES_LOCKED").split(" ");
  for (let i = 0; i < Number(env("ALPES_LOCKOUT_FAILURES")); i++) {
    await page.getByLabel(/correo/i).fill(lockedEmail);
    await page.getByLabel(/contraseña/i).fill(`wrong-${i}`);
    await page.getByRole("button", { name: /entrar/i }).click();
    await page.locator("[role=alert]", { hasText: /incorrectos/i }).waitFor();
  }
  await page.getByLabel(/contraseña/i).fill(lockedPassword);
  await page.getByRole("button", { name: /entrar/i }).click();
  await page.locator("[role=alert]", { hasText: /bloqueada/i }).waitFor();
  say("lockout_shown");

  // 1. The provider uploads a folder and sees it anonymized.
  await login(page, provider, true);
  // An access token the server refuses (as an expired one): the console refreshes once and goes on,
  // with a new refresh token (rotation).
  const before0 = await page.evaluate(() => {
    const s = JSON.parse(sessionStorage.getItem("alpes.session"));
    const old = s.refresh;
    s.access = s.access.slice(0, -6) + "AAAAAA";
    sessionStorage.setItem("alpes.session", JSON.stringify(s));
    return old;
  });
  await page.goto(`${URL}/#/balance`);
  await page.reload();
  await page.getByTestId("accrued").waitFor();
  const rotated = await page.evaluate(() => JSON.parse(sessionStorage.getItem("alpes.session")).refresh);
  if (rotated === before0) fail("the console did not refresh its tokens after a refused access token");
  say("refreshed");
  const before = await accrued(page);
  say("provider_balance_before", { accrued: before });
  await page.goto(`${URL}/#/upload`);
  // The live stream is open before anything is uploaded (its badge says so).
  await page.locator(".live.on").waitFor();
  const started = Date.now();
  await page.getByTestId("folder").setInputFiles(env("ALPES_FOLDER"));
  const rows = page.locator("#uploads tbody tr");
  await page.waitForFunction((n) => document.querySelectorAll("#uploads tbody tr").length === n, FILES);
  // Each row has its progress bar; every file ends uploaded, then anonymized.
  if ((await rows.locator("progress").count()) !== FILES) fail("a file has no progress bar");
  await page.waitForFunction((n) => document.querySelectorAll("#uploads .upload-uploaded").length === n, FILES);
  const uploadedMs = Date.now() - started;
  await page.waitForFunction((n) => document.querySelectorAll("#uploads .badge-anonimizada").length === n, FILES, { timeout: 120_000 });
  say("provider_uploaded", { files: FILES, upload_ms: uploadedMs, anonymized_ms: Date.now() - started });
  // One more file, dropped on the drop zone (a script's drop carries files, not folders).
  const dropped = readFileSync(env("ALPES_DROP_FILE"));
  const transfer = await page.evaluateHandle((bytes) => {
    const t = new DataTransfer();
    t.items.add(new File([new Uint8Array(bytes)], "dropped.dcm", { type: "application/dicom" }));
    return t;
  }, [...dropped]);
  await page.locator(".dropzone").dispatchEvent("drop", { dataTransfer: transfer });
  await page.waitForFunction((n) => document.querySelectorAll("#uploads .badge-anonimizada").length === n, FILES + 1);
  say("provider_dropped");
  await axe(page, "upload");
  await page.screenshot({ path: join(SHOTS, "provider-upload.png"), fullPage: true });
  await page.goto(`${URL}/#/images`);
  await page.waitForFunction((n) => document.querySelectorAll("#images .badge-anonimizada").length >= n, FILES);
  await axe(page, "images");
  await page.screenshot({ path: join(SHOTS, "provider-images.png"), fullPage: true });
  // Logging out revokes the session: put it back and the console finds it ended.
  const saved = await page.evaluate(() => sessionStorage.getItem("alpes.session"));
  await logout(page);
  await page.evaluate((s) => {
    sessionStorage.setItem("alpes.session", s);
    sessionStorage.setItem("alpes.walk.late-paint", "");
  }, saved);
  await page.reload();
  await page.locator(".notice", { hasText: /sesión ha terminado/i }).waitFor();
  say("logged_out_session_refused");

  // 2. The consumer finds the images, sees a price and downloads one.
  await login(page, consumer, false);
  await page.getByRole("button", { name: /^buscar$|^search$/i }).click();
  await page.waitForFunction((n) => document.querySelectorAll("#results tbody tr").length >= n, FILES);
  // Each result shows its preview: the WADO-RS thumbnail of its anonymized instance, a picture.
  await page.waitForFunction(
    (n) => [...document.querySelectorAll("#results tbody tr img.thumb")].filter((i) => i.complete && i.naturalWidth > 0).length >= n,
    FILES,
  );
  const price = (await page.locator("#results tbody tr .price").first().textContent()) ?? "";
  if (!/\d/.test(price)) fail(`no price shown before the download: ${price}`);
  await page.locator("#results tbody tr input[type=checkbox]").first().check();
  await axe(page, "search");
  await page.screenshot({ path: join(SHOTS, "consumer-search.png"), fullPage: true });
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.locator("#results tbody tr").first().getByRole("button", { name: /descargar|download/i }).click(),
  ]);
  const bytes = readFileSync(await download.path());
  if (bytes.length < 132 || bytes.toString("latin1", 128, 132) !== "DICM") fail("the download is not a DICOM file");
  say("consumer_downloaded", { bytes: bytes.length, price, file: download.suggestedFilename() });
  const downloadedId = download.suggestedFilename().replace(/\.dcm$/, "");

  // The consumer opens the CT in the viewer: the image, window/level, and a measurement.
  await page.locator("#results tbody tr", { hasText: "CT" }).first().getByRole("link", { name: /ver|view/i }).click();
  await page.getByRole("button", { name: /abrir en el visor|open in the viewer/i }).click();
  const viewer = page.locator(".viewer[data-ready=yes]");
  await viewer.waitFor();
  await page.waitForTimeout(500);
  const image = await viewer.screenshot({ path: join(SHOTS, "viewer-image.png") });
  const box = await viewer.boundingBox();
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx, cy);
  await page.mouse.down();
  await page.mouse.move(cx + 120, cy + 60, { steps: 8 });
  await page.mouse.up();
  await page.waitForTimeout(300);
  if (image.equals(await viewer.screenshot())) fail("window/level changed nothing on screen");
  await page.getByRole("button", { name: /medir|measure/i }).click();
  await page.mouse.move(cx - 60, cy - 40);
  await page.mouse.down();
  await page.mouse.move(cx + 60, cy + 40, { steps: 8 });
  await page.mouse.up();
  const measured = page.locator(".viewer svg text", { hasText: /mm/ }).first();
  await measured.waitFor();
  say("consumer_viewed", { measured: await measured.textContent() });
  await axe(page, "viewer");
  await page.screenshot({ path: join(SHOTS, "consumer-viewer.png"), fullPage: true });
  await logout(page);

  // 3. The provider's balance rises on screen.
  await login(page, provider, false);
  await page.goto(`${URL}/#/balance`);
  await page.waitForFunction((b) => {
    const el = document.querySelector("[data-testid=accrued]");
    return el && el.textContent !== b;
  }, before);
  const after = (await page.getByTestId("accrued").textContent()) ?? "";
  say("provider_balance_after", { accrued: after });
  await page.locator("figure.chart canvas").waitFor();
  await axe(page, "balance");
  await page.screenshot({ path: join(SHOTS, "provider-balance.png"), fullPage: true });
  // Its de-identification report, as a PDF.
  await page.goto(`${URL}/#/reports`);
  await page.getByRole("button", { name: /pedir informe|ask for a report/i }).click();
  const [report] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: /descargar|download/i }).first().click({ timeout: TIMEOUT }),
  ]);
  const pdf = readFileSync(await report.path());
  if (pdf.toString("latin1", 0, 5) !== "%PDF-") fail("the report is not a PDF");
  say("provider_report", { bytes: pdf.length });
  await axe(page, "reports");
  await page.screenshot({ path: join(SHOTS, "provider-reports.png"), fullPage: true });
  await page.goto(`${URL}/#/imports`);
  await page.locator("h1").filter({ hasText: /importaciones|import jobs/i }).waitFor();
  await axe(page, "imports");
  // Its own calling AE title, and not another provider's.
  await page.goto(`${URL}/#/ae`);
  await page.locator("#aes tbody tr", { hasText: env("ALPES_OWN_AE") }).waitFor();
  if ((await page.locator("#aes tbody tr").count()) !== 1) fail("a provider sees another provider's AE title");
  say("provider_ae_titles");
  await logout(page);

  // 4. An admin finds the download in the audit trail.
  await login(page, admin, false);
  await page.goto(`${URL}/#/audit`);
  await page.getByLabel(/acción|action/i).selectOption("download");
  await page.getByRole("button", { name: /filtrar|filter/i }).click();
  await page.locator(`#audit tbody tr[data-action=download] td:text-is("${downloadedId}")`).first().waitFor();
  say("admin_found_download", { image: downloadedId });
  await axe(page, "audit");
  await page.screenshot({ path: join(SHOTS, "admin-audit.png"), fullPage: true });
  // The admin pays the provider half of what it earned.
  await page.goto(`${URL}/#/payments`);
  await page.getByLabel(/^proveedor$|^provider$/i).fill(env("ALPES_PROVIDER_ID"));
  await page.getByRole("button", { name: /ver saldo|show balance/i }).click();
  await page.getByLabel(/importe|amount/i).fill("0.50");
  await page.getByLabel(/referencia|reference/i).fill("console-e2e-1");
  await page.getByRole("button", { name: /^pagar$|^pay$/i }).click();
  await page.locator("p.notice").waitFor();
  await axe(page, "payments");
  // Every other admin screen opens and passes axe.
  for (const [screen, heading] of [
    ["users", /usuarios|users/i],
    ["institutions", /instituciones|institutions/i],
    ["ae", /títulos ae|ae titles/i],
    ["imports", /importaciones|import jobs/i],
    ["health", /estado y métricas|health and metrics/i],
  ]) {
    await page.goto(`${URL}/#/${screen}`);
    await page.locator("h1").filter({ hasText: heading }).waitFor();
    if (screen === "users") {
      // The consumer's terms, saved from the console; an API key made, shown once, revoked.
      const lab = page.locator("#users tbody tr", { hasText: "consumidor" });
      await lab.getByRole("button", { name: /condiciones|terms/i }).click();
      await lab.getByRole("button", { name: /guardar|save/i }).click();
      await lab.getByRole("button", { name: /condiciones|terms/i }).waitFor();
      await page.getByLabel(/^nombre$|^name$/i).last().fill("pacs-bridge");
      await page.getByLabel(/^usuario$|^user$/i).fill(env("ALPES_PROVIDER_ID"));
      await page.getByRole("button", { name: /crear clave|create key/i }).click();
      await page.locator("p.notice code", { hasText: /^alpes_/ }).waitFor();
      await page.getByRole("button", { name: /revocar|revoke/i }).click();
      await page.getByRole("button", { name: /revocar|revoke/i }).waitFor({ state: "detached" });
      say("admin_users", { api_key: "created, shown once, revoked" });
    }
    if (screen === "health") await page.locator("figure.chart canvas").waitFor(); // two samples of /metrics
    await axe(page, screen);
    if (screen === "users" || screen === "health") await page.screenshot({ path: join(SHOTS, `admin-${screen}.png`), fullPage: true });
  }
  await logout(page);
  // The provider sees the payment.
  await login(page, provider, false);
  await page.goto(`${URL}/#/balance`);
  await page.waitForFunction(() => document.querySelector("[data-testid=paid]")?.textContent?.includes("0,50"));
  say("provider_paid");
  await logout(page);

  // 5. The doctor validates their patient, then the admin validates for the institution.
  await login(page, doctor, false);
  const consent = page.locator("#patients tbody tr .badge");
  await consent.filter({ hasText: /pendiente/i }).waitFor();
  await page.locator("#patients tbody tr").getByRole("button", { name: /validar/i }).click();
  await consent.filter({ hasText: /validado por el médico/i }).waitFor();
  await axe(page, "patients");
  await page.screenshot({ path: join(SHOTS, "doctor-patients.png"), fullPage: true });
  await logout(page);
  await login(page, admin, false);
  await page.goto(`${URL}/#/patients`);
  await page.locator("#patients tbody tr").getByRole("button", { name: /validar/i }).click();
  await consent.filter({ hasText: /validado por la institución/i }).waitFor();
  say("consent_validated");

  // The one refusal the policy is known to make: Cornerstone sets a style attribute on each
  // measurement label (the stylesheet gives the same look), on the viewer's screen only.
  const label = (v) => v.url.includes("#/viewer/") && v.text.startsWith("Applying inline style violates");
  say("csp", { refused_label_styles: cspViolations.filter(label).length });
  const refused = cspViolations.filter((v) => !label(v));
  if (refused.length) fail(`the browser reported: ${refused.map((v) => `${v.url}: ${v.text}`).join(" | ")}`);
  if (axeFindings.length) fail(`axe-core found serious or critical violations: ${axeFindings.join(" | ")}`);
  say("done");
} catch (e) {
  // What the page showed when the walk failed: its address, its alerts and a screenshot.
  if (page) {
    const alerts = await page.locator("[role=alert]").allTextContents().catch(() => []);
    say("failed", { url: page.url(), alerts, csp: cspViolations });
    await page.screenshot({ path: join(SHOTS, "failure.png"), fullPage: true }).catch(() => undefined);
  }
  throw e;
} finally {
  await browser.close();
}
