// The console's build: TypeScript and JSX (Preact's automatic runtime, as tsconfig.json sets it)
// into `../dist`, which is committed and embedded in the `alpes` binary (console/build.rs).
// Hashed file names under assets/ let the server cache them for a year; no source maps, no
// inline scripts or styles (the console's Content-Security-Policy allows 'self' only).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    assetsDir: "assets",
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2022",
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
