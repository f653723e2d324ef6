// The console's build: TypeScript and JSX (Preact's automatic runtime, as tsconfig.json sets it)
// into `../dist`, which is committed and embedded in the `alpes` binary (console/build.rs).
// Hashed file names under assets/ let the server cache them for a year; no source maps, no
// inline scripts or styles (the console's Content-Security-Policy allows 'self' only).
//
// The DICOM viewer (Cornerstone3D, loaded on demand): its loader decodes in a module worker that
// imports its codecs (WebAssembly, fetched only for a compressed transfer syntax), hence ES
// workers. vtk.js's XML reader, which a stack viewer never uses, imports the Node library
// xmlbuilder2: it is replaced by a stub that throws (src/stubs/xmlbuilder2.ts).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  resolve: {
    alias: { xmlbuilder2: decodeURIComponent(new URL("./src/stubs/xmlbuilder2.ts", import.meta.url).pathname) },
  },
  worker: { format: "es" },
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    assetsDir: "assets",
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2022",
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    chunkSizeWarningLimit: 4096,
  },
});
