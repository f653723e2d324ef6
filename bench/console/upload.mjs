// Upload through the browser, side by side: the same folder of distinct DICOM files uploaded in
// headless Chromium through Alpes' web console (a folder picked: the console uploads 6 at a time
// with per-file progress) and through Orthanc Explorer's upload page (Orthanc's own web UI: pick
// the files, "Start the upload"). Each is timed from the pick to the last file stored: for Alpes,
// every row of the console's table "uploaded" (202: registered, blob written, event produced);
// for Orthanc, its /statistics counting every instance. Then, for Alpes, until every image is
// anonymized (as the console's live view shows it). Prints one JSON line.
//
// Run by bench/console/run.sh, which starts both servers and makes the folders; environment:
//   ALPES_URL, ALPES_PROVIDER ("email password"), ALPES_FOLDER, ORTHANC_URL, ORTHANC_FOLDER,
//   ALPES_CHROMIUM, FILES.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";

const require = createRequire(join(process.cwd(), "console/web/package.json"));
const { chromium } = require("playwright-core");
const env = (n) => process.env[n] ?? (() => { throw new Error(`${n} is not set`); })();
const FILES = Number(env("FILES"));
const browser = await chromium.launch({ executablePath: env("ALPES_CHROMIUM"), args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
const TIMEOUT = 600_000;

async function alpes() {
  const page = await (await browser.newContext({ locale: "en-GB" })).newPage();
  page.setDefaultTimeout(TIMEOUT);
  const creds = env("ALPES_PROVIDER");
  const at = creds.indexOf(" ");
  await page.goto(`${env("ALPES_URL")}/`);
  await page.getByLabel(/email/i).fill(creds.slice(0, at));
  await page.getByLabel(/password/i).fill(creds.slice(at + 1));
  await page.getByRole("button", { name: /log in/i }).click();
  await page.goto(`${env("ALPES_URL")}/#/upload`);
  await page.locator(".live.on").waitFor();
  const t0 = performance.now();
  await page.getByTestId("folder").setInputFiles(env("ALPES_FOLDER"));
  await page.waitForFunction((n) => document.querySelectorAll("#uploads .upload-uploaded").length === n, FILES, { polling: 50 });
  const uploaded = (performance.now() - t0) / 1000;
  const failed = await page.locator("#uploads .upload-failed").count();
  await page.waitForFunction((n) => document.querySelectorAll("#uploads .badge-anonimizada").length === n, FILES, { polling: 100 });
  const anonymized = (performance.now() - t0) / 1000;
  return { uploaded_s: uploaded, anonymized_s: anonymized, failed };
}

async function orthanc() {
  const url = env("ORTHANC_URL");
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(TIMEOUT);
  await page.goto(`${url}/app/explorer.html#upload`);
  const dir = env("ORTHANC_FOLDER");
  const files = readdirSync(dir).map((f) => join(dir, f));
  const t0 = performance.now();
  await page.locator("#fileupload").setInputFiles(files);
  await page.locator("#upload-button").click();
  for (;;) {
    const stats = await (await fetch(`${url}/statistics`)).json();
    if (stats.CountInstances >= FILES) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { uploaded_s: (performance.now() - t0) / 1000 };
}

try {
  const a = await alpes();
  const o = await orthanc();
  const rate = (s) => Math.round((FILES / s) * 10) / 10;
  console.log(
    JSON.stringify({
      files: FILES,
      alpes_upload_s: a.uploaded_s,
      alpes_files_per_s: rate(a.uploaded_s),
      alpes_anonymized_s: a.anonymized_s,
      alpes_anonymized_files_per_s: rate(a.anonymized_s),
      alpes_failed: a.failed,
      orthanc_upload_s: o.uploaded_s,
      orthanc_files_per_s: rate(o.uploaded_s),
      ratio_alpes_over_orthanc: Math.round((o.uploaded_s / a.uploaded_s) * 100) / 100,
    }),
  );
} finally {
  await browser.close();
}
