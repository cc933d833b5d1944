#!/usr/bin/env bash
# Prints the path of Chrome DevTools' heap snapshot code bundled for Node, installing it
# first when missing: npm `chrome-devtools-frontend` (DevTools' TypeScript sources) bundled
# with esbuild, in $DEVTOOLS_DIR (default ~/.cache/memwatch-devtools), never in the
# repository. Used by scripts/heap-devtools-check.sh, the heap integration tests and .ci/run.
set -euo pipefail
devtools=${DEVTOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/memwatch-devtools}
version=${DEVTOOLS_VERSION:-1.0.1705227}
bundle="$devtools/devtools-heap-$version.mjs"
if [[ -s "$bundle" ]]; then
  echo "$bundle"
  exit 0
fi
mkdir -p "$devtools"
[[ -f "$devtools/package.json" ]] || echo '{"private":true}' >"$devtools/package.json"
echo "installing chrome-devtools-frontend@$version and esbuild into $devtools ..." >&2
npm install --prefix "$devtools" --ignore-scripts --no-audit --no-fund --loglevel=error \
  "chrome-devtools-frontend@$version" esbuild@0.25 >&2
front="$devtools/node_modules/chrome-devtools-frontend/front_end"
cat >"$devtools/entry.ts" <<TS
export {HeapSnapshotLoader} from '$front/entrypoints/heap_snapshot_worker/HeapSnapshotLoader.js';
export * as HeapSnapshot from '$front/entrypoints/heap_snapshot_worker/HeapSnapshot.js';
TS
# The locale list is generated when DevTools is built; the worker needs only en-US.
cat >"$devtools/build.mjs" <<'JS'
import * as esbuild from 'esbuild';
const [entry, out] = process.argv.slice(2);
const locales = {
  name: 'locales',
  setup(build) {
    build.onResolve({filter: /\/locales\.js$/}, () => ({path: 'locales', namespace: 'locales'}));
    build.onLoad({filter: /.*/, namespace: 'locales'}, () => ({
      contents: "export const BUNDLED_LOCALES = ['en-US']; export const DEFAULT_LOCALE = 'en-US';" +
          "export const LOCAL_FETCH_PATTERN = ''; export const LOCALES = ['en-US'];" +
          "export const REMOTE_FETCH_PATTERN = '';",
      loader: 'js',
    }));
  },
};
await esbuild.build({entryPoints: [entry], bundle: true, platform: 'node', format: 'esm',
                     outfile: out, plugins: [locales], logLevel: 'warning'});
JS
(cd "$devtools" && node build.mjs entry.ts "$bundle.tmp" >&2)
mv "$bundle.tmp" "$bundle"
echo "$bundle"
