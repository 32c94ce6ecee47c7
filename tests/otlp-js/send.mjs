// Sends metrics to Cairn with the OpenTelemetry JS SDK's OTLP/HTTP
// exporter, which encodes OTLP/JSON.
//   node send.mjs http://127.0.0.1:9090/api/v1/otlp/v1/metrics
import metrics from "@opentelemetry/sdk-metrics";
import otlp from "@opentelemetry/exporter-metrics-otlp-http";
import resources from "@opentelemetry/resources";

const { MeterProvider, PeriodicExportingMetricReader, View, ExponentialHistogramAggregation } = metrics;
const { OTLPMetricExporter } = otlp;
const { Resource } = resources;

const url = process.argv[2];
const exporter = new OTLPMetricExporter({ url });
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
const provider = new MeterProvider({
  resource: new Resource({ "service.name": "inference", "service.instance.id": "gpu-node-9" }),
  readers: [reader],
  views: [new View({ instrumentName: "kernel.latency", aggregation: new ExponentialHistogramAggregation() })],
});
const m = provider.getMeter("cairn-test");
const c = m.createCounter("requests", { description: "Requests served" });
c.add(4, { route: "/v1/chat" });
c.add(6, { route: "/v1/chat" });
const h = m.createHistogram("request.duration", { unit: "s" });
for (const v of [0.05, 0.2, 0.7, 3]) h.record(v, { route: "/v1/chat" });
const e = m.createHistogram("kernel.latency", { unit: "s" });
for (const v of [0.003, 0.02, 0.4, 3.0, 7.5]) e.record(v, { gpu: "1" });
m.createObservableGauge("gpu.temperature", { unit: "Cel" }).addCallback((o) => o.observe(71.5, { gpu: "1" }));
await reader.forceFlush();
await provider.shutdown();
console.log("sent");
