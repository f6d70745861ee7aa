#!/usr/bin/env bash
# Re-fetch the dashboard's one third-party asset (Chart.js, MIT) from the npm
# registry. The dashboard has no build step: this file is the only thing in
# proxy/dashboard/static/ that is not written by hand.
set -euo pipefail
version="${CHARTJS_VERSION:-4.5.1}"
dest="$(dirname "$0")/../proxy/dashboard/static/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "chart.js@${version}" >/dev/null && tar -xzf chart.js-*.tgz)
cp "$tmp/package/dist/chart.umd.min.js" "$dest/chart.umd.min.js"
cp "$tmp/package/LICENSE.md" "$dest/chart.js.LICENSE.md"
echo "vendored chart.js ${version} into ${dest}"
