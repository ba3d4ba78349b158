// Validates ServiceMonitor manifests against the prometheus-operator CRD
// schema that @kubernetes-models/prometheus-operator ships (kubernetes-validate
// knows only built-in kinds). Usage: node servicemonitor.mjs MODULES_DIR FILE...
// MODULES_DIR is the node_modules that scripts/deploy/install-deploy-tools.sh filled
// (kept under target/, out of the source tree).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
if (!modules || files.length === 0) {
  console.error("usage: node servicemonitor.mjs MODULES_DIR FILE...");
  process.exit(2);
}
// Imported by path because this script lives outside that node_modules tree.
const load = (path) => import(pathToFileURL(join(modules, path)).href);
const { parseAllDocuments } = await load("yaml/dist/index.js");
const { ServiceMonitor } = await load(
  "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js",
);

let failed = false;
let checked = 0;
for (const file of files) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    const object = doc.toJS();
    if (object?.kind !== "ServiceMonitor") continue;
    checked += 1;
    try {
      new ServiceMonitor(object).validate();
      console.log(`${file}: ServiceMonitor/${object.metadata?.name} is valid`);
    } catch (error) {
      console.error(`${file}: ServiceMonitor/${object.metadata?.name}: ${error.message}`);
      failed = true;
    }
  }
}
// A file list without any ServiceMonitor means the check checked nothing.
if (checked === 0) {
  console.error("no ServiceMonitor found in " + files.join(", "));
  failed = true;
}
process.exit(failed ? 1 : 0);
