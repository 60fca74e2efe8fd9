// Builds into the Python package, where the console serves it (not committed; built by
// hack/console/build.sh during setup).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: "../operator/devserver_operator/console/ui",
    emptyOutDir: true,
    // One small bundle; no inline scripts or styles (the CSP forbids them).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
