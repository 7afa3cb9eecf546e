// Bundles each page's script, CodeMirror included, into one ES module under
// src/flowdesk/web/static/dist, which the pages load when it exists.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const outdir = fileURLToPath(new URL("../src/flowdesk/web/static/dist", import.meta.url));

await build({
  entryPoints: {
    editor: "src/editor.js",
    settings: "src/settings.js",
  },
  absWorkingDir: fileURLToPath(new URL(".", import.meta.url)),
  outdir,
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: true,
  sourcemap: false,
  legalComments: "eof",
  logLevel: "warning",
});
console.log(`Built the editor bundles into ${outdir}`);
