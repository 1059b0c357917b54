import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The console's UI: plain TypeScript with Preact + htm (tagged templates, so no JSX transform
// and no framework plugin), bundled into dist/console, which the console server serves. Every
// asset is local: the console works offline.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../../../dist/console', import.meta.url)),
    emptyOutDir: true,
    sourcemap: true,
  },
});
