import { App, AppOptions, ViewConfig } from './node_modules/dwv/dist/dwv.min.js';

const params = new URLSearchParams(window.location.search);
const root = params.get('root');
const study = params.get('study');
const auth = 'Bearer ' + params.get('token');

async function open() {
  // QIDO-RS: the study's instances, each with its WADO-RS RetrieveURL (0008,1190).
  const res = await fetch(`${root}/studies/${study}/instances`, {
    headers: { Authorization: auth, Accept: 'application/dicom+json' },
  });
  if (!res.ok) {
    throw new Error(`QIDO-RS answered ${res.status}`);
  }
  const urls = (await res.json()).map((instance) => instance['00081190'].Value[0]);
  const app = new App();
  app.init(new AppOptions({ '*': [new ViewConfig('layerGroup0')] }));
  app.addEventListener('load', () => {
    document.title = `loaded ${urls.length}`;
  });
  app.addEventListener('error', (event) => {
    document.title = `error ${event.error ? event.error.message : event.message}`;
  });
  // WADO-RS: each instance as multipart/related DICOM, which dwv's multipart loader reads.
  app.loadURLs(urls, {
    requestHeaders: [
      { name: 'Authorization', value: auth },
      { name: 'Accept', value: 'multipart/related; type="application/dicom"' },
    ],
  });
}

open().catch((error) => {
  document.title = `error ${error.message}`;
});
