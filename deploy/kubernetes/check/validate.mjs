// Validates the Prometheus Operator resources (ServiceMonitor, Prometheus,
// PrometheusRule) in the YAML files given as arguments against the
// Operator's CRD schemas, as packaged by @kubernetes-models/prometheus-operator.
// Exits 1 when one is invalid, 2 when a file holds a kind it has no schema for.
//   npm ci && node validate.mjs ../monitoring.yaml ../prometheusrule.yaml
import fs from "node:fs";
import yaml from "js-yaml";
import * as v1 from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

let invalid = 0;
let unknown = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of yaml.loadAll(fs.readFileSync(file, "utf8"))) {
    if (!doc) continue;
    const name = `${file}: ${doc.kind}/${doc.metadata?.name}`;
    const Model = doc.apiVersion === "monitoring.coreos.com/v1" ? v1[doc.kind] : undefined;
    if (!Model) {
      unknown++;
      console.log(`${name}: no schema`);
      continue;
    }
    try {
      new Model(doc).validate();
      console.log(`${name}: valid`);
    } catch (e) {
      invalid++;
      console.log(`${name}: invalid: ${e.message}`);
    }
  }
}
process.exit(invalid ? 1 : unknown ? 2 : 0);
