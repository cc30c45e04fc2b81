// The monitoring files: the Prometheus rules (deploy/prometheus) accepted
// and unit-tested by promtool, the PrometheusRule of the Kubernetes base
// holding the same groups and valid against the operator's API
// definitions, and the Grafana dashboard (deploy/grafana) with its key
// panels. Every PromQL expression of the rules and the dashboard may name
// only the metrics of docs/metrics.md's tables (and Prometheus' own `up`).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments, stringify } from "yaml";
import { validateObject } from "./api_fields.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const rulesFile = path.join(repo, "deploy/prometheus/jetstream-rules.yaml");
const rulesTestFile = path.join(repo, "deploy/prometheus/jetstream-rules.test.yaml");
const prometheusRuleFile = path.join(repo, "deploy/kubernetes/base/prometheusrule.yaml");
const dashboardFile = path.join(repo, "deploy/grafana/jetstream-dashboard.json");
const metricsDoc = path.join(repo, "docs/metrics.md");

// From Debian's `prometheus` package, which tools/setup.sh installs.
const PROMTOOL = "/usr/bin/promtool";

function promtool(args, cwd) {
  assert.ok(fs.existsSync(PROMTOOL),
    `${PROMTOOL} is missing: install Debian's prometheus package (apt-get install prometheus), which ships promtool`);
  const r = spawnSync(PROMTOOL, args, { encoding: "utf8", cwd });
  if (r.error) assert.fail(`${PROMTOOL} cannot run: ${r.error.message}`);
  return r;
}

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "jetstream-monitoring-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// ---- the metric contract ----

// docs/metrics.md's table rows whose first column is a backticked name:
// Map name -> type (counter, gauge, histogram).
function contract() {
  const metrics = new Map();
  for (const line of fs.readFileSync(metricsDoc, "utf8").split("\n")) {
    const m = /^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*([a-z]+)\s*\|/.exec(line);
    if (m) metrics.set(m[1], m[2]);
  }
  return metrics;
}

// Prometheus' own series, allowed besides the contract.
const PROMETHEUS_OWN = new Set(["up"]);

// Words of PromQL that are not metric names when not followed by '('.
const KEYWORDS = new Set([
  "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
  "and", "or", "unless", "atan2", "inf", "nan", "le",
]);

// The metric names an expression reads: identifiers not followed by '(',
// after removing string literals, label matchers, range and subquery
// brackets, groupings (by, without, on, ignoring, group_left/right with
// their label lists) and template variables.
export function metricNames(expr) {
  let e = expr;
  e = e.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  e = e.replace(/\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*/g, " ");
  e = e.replace(/\{[^}]*\}/g, " ");
  e = e.replace(/\[[^\]]*\]/g, " ");
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = new Set();
  const re = /(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*/g;
  let m;
  while ((m = re.exec(e)) !== null) {
    const rest = e.slice(m.index + m[0].length);
    if (/^\s*\(/.test(rest)) continue; // a function or aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

// The contract's name of a series name: a histogram's _bucket, _sum and
// _count are the histogram's.
function baseName(name, metrics) {
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m && metrics.get(m[1]) === "histogram") return m[1];
  return name;
}

// "where: name" for every name of the expressions the contract lacks.
function unknownMetrics(exprs, metrics) {
  const out = [];
  for (const { where, expr } of exprs) {
    const names = metricNames(expr);
    if (names.length === 0) out.push(`${where}: no metric found in ${expr}`);
    for (const n of names) {
      if (!PROMETHEUS_OWN.has(n) && !metrics.has(baseName(n, metrics))) out.push(`${where}: ${n}`);
    }
  }
  return out;
}

// ---- the files ----

function rules() {
  return parse(fs.readFileSync(rulesFile, "utf8"));
}

function ruleExprs(groups) {
  return groups.flatMap((g) =>
    g.rules.map((r) => ({ where: `${g.name}/${r.alert ?? r.record}`, expr: String(r.expr) })));
}

function dashboard() {
  return JSON.parse(fs.readFileSync(dashboardFile, "utf8"));
}

// Every panel, rows' collapsed panels included.
function panelsOf(d) {
  return (d.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
}

function dashboardExprs(d) {
  const out = [];
  for (const p of panelsOf(d)) {
    for (const t of p.targets ?? []) {
      if (t.expr !== undefined) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr });
    }
  }
  for (const v of d.templating?.list ?? []) {
    if (v.type !== "query") continue;
    const query = typeof v.query === "string" ? v.query : v.query?.query;
    // label_values(series, label): the series is the expression.
    const lv = /^\s*label_values\s*\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$/.exec(query ?? "");
    out.push({ where: `variable ${v.name}`, expr: lv ? lv[1] : query });
  }
  return out;
}

// ---- the tests ----

test("the metric-name extractor finds the metrics of an expression, and not its functions, labels or keywords", () => {
  assert.deepEqual(
    metricNames('histogram_quantile(0.99, sum by (job, le) (rate(jetstream_gateway_changeset_seconds_bucket{job=~"$job", le!="x"}[$__rate_interval])))'),
    ["jetstream_gateway_changeset_seconds_bucket"]);
  assert.deepEqual(
    metricNames('sum without (instance) (rate(a_total[5m] offset 1h)) / on (job) group_left (component) b_info > bool 1e3 and up'),
    ["a_total", "b_info", "up"]);
  assert.deepEqual(metricNames('sum(rate(x_total{code="rate(y)"}[1m])) by (code)'), ["x_total"]);
  const metrics = contract();
  assert.ok(metrics.size > 40, `docs/metrics.md's tables list the metrics (${metrics.size} found)`);
  assert.equal(metrics.get("jetstream_sync_store_write_seconds"), "histogram");

  // A name outside the contract is reported, and so is a histogram suffix
  // on a counter; histogram series of the contract's histograms are not.
  const bad = 'sum by (job) (rate(jetstream_gateway_bogus_total{job="x"}[5m])) / sum(rate(jetstream_sync_changesets_total_count[5m]))';
  assert.deepEqual(unknownMetrics([{ where: "bad", expr: bad }], metrics),
    ["bad: jetstream_gateway_bogus_total", "bad: jetstream_sync_changesets_total_count"]);
  assert.deepEqual(unknownMetrics([{ where: "good", expr: "rate(jetstream_sync_store_write_seconds_sum[5m]) + up" }], metrics), []);
  assert.deepEqual(unknownMetrics([{ where: "empty", expr: "vector(1)" }], metrics), ["empty: no metric found in vector(1)"]);
});

test("promtool check rules accepts deploy/prometheus/jetstream-rules.yaml", () => {
  const r = promtool(["check", "rules", rulesFile]);
  assert.equal(r.status, 0, `promtool check rules failed:\n${r.stdout}${r.stderr}`);
});

test("promtool test rules passes jetstream-rules.test.yaml, and fails it on a broken rule", (t) => {
  const r = promtool(["test", "rules", path.basename(rulesTestFile)], path.dirname(rulesTestFile));
  assert.equal(r.status, 0, `promtool test rules failed:\n${r.stdout}${r.stderr}`);

  // The same tests against a rules file whose sync-link alert is inverted.
  const dir = tempDir(t);
  const broken = fs.readFileSync(rulesFile, "utf8").replace("jetstream_gateway_sync_links_up == 0", "jetstream_gateway_sync_links_up > 0");
  assert.notEqual(broken, fs.readFileSync(rulesFile, "utf8"));
  fs.writeFileSync(path.join(dir, "jetstream-rules.yaml"), broken);
  fs.copyFileSync(rulesTestFile, path.join(dir, "jetstream-rules.test.yaml"));
  const b = promtool(["test", "rules", "jetstream-rules.test.yaml"], dir);
  assert.notEqual(b.status, 0, "promtool test rules passed a broken rule");
  assert.match(b.stdout + b.stderr, /JetstreamGatewaySyncLinksDown/);
});

test("every alert has for:, a severity, a summary and a description; names are unique", () => {
  const { groups } = rules();
  const names = new Set();
  let alerts = 0;
  for (const g of groups) {
    for (const r of g.rules) {
      const name = r.alert ?? r.record;
      assert.ok(!names.has(name), `${name} defined twice`);
      names.add(name);
      if (!r.alert) continue;
      alerts++;
      assert.match(r.for ?? "", /^\d+[smh]$/, `${name}: for:`);
      assert.ok(["critical", "warning", "info"].includes(r.labels?.severity), `${name}: labels.severity`);
      assert.ok(r.annotations?.summary, `${name}: annotations.summary`);
      assert.match(r.annotations?.description ?? "", /\$(labels|value)/, `${name}: a templated description`);
    }
  }
  assert.ok(alerts >= 10, `${alerts} alerts`);
  for (const a of ["JetstreamTargetDown", "JetstreamGatewayChangesetLatencyHigh", "JetstreamDeliveryLagHigh",
    "JetstreamHookErrors", "JetstreamStoreErrors", "JetstreamPersistSlow", "JetstreamLeasesLost",
    "JetstreamGatewaySyncLinksDown", "JetstreamWriteQueueOverflows", "JetstreamGrpcServerErrors"]) {
    assert.ok(names.has(a), `alert ${a}`);
  }
});

test("the rules' expressions name only metrics of docs/metrics.md", () => {
  const exprs = ruleExprs(rules().groups);
  assert.ok(exprs.length > 10);
  assert.deepEqual(unknownMetrics(exprs, contract()), []);
});

test("the Kubernetes base's PrometheusRule holds the rules file's groups and is valid", async () => {
  const docs = parseAllDocuments(fs.readFileSync(prometheusRuleFile, "utf8")).map((d) => d.toJS());
  assert.equal(docs.length, 1);
  const rule = docs[0];
  assert.equal(rule.apiVersion, "monitoring.coreos.com/v1");
  assert.equal(rule.kind, "PrometheusRule");
  assert.equal(rule.metadata.labels["app.kubernetes.io/name"], "jetstream");
  assert.deepEqual(rule.spec.groups, rules().groups);
  assert.deepEqual(await validateObject(rule), []);

  const kustomization = parse(fs.readFileSync(path.join(repo, "deploy/kubernetes/base/kustomization.yaml"), "utf8"));
  assert.ok(kustomization.resources.includes("prometheusrule.yaml"), "listed in the base's kustomization.yaml");

  // The validation sees a broken rule.
  const broken = structuredClone(rule);
  delete broken.spec.groups[0].name;
  assert.match((await validateObject(broken)).join("\n"), /required property 'name'|must have required property name/);
  const misspelt = structuredClone(rule);
  misspelt.spec.groups[1].rules[0].annotation = { summary: "x" };
  assert.match((await validateObject(misspelt)).join("\n"), /annotation: not a field/);
});

const KEY_PANELS = [
  // throughput
  "Changesets/s by outcome", "Gateway messages in/out/s", "Deliveries/s",
  // latencies
  "Gateway changeset latency p50/p99", "Delivery lag p50/p99", "Commit stage latency p50/p99",
  "Hook call latency p50/p99", "gRPC server handling p50/p99",
  // sessions and connections
  "Connections", "Sessions",
  // errors
  "WebSocket closes/s by code", "Store errors/s", "gRPC server non-OK/s", "Hook errors/s",
  "Write-queue overflows/s", "Rate-limited messages/s",
  // replicas and leases
  "Cluster members", "Leases held", "Leases acquired/lost per second", "Gateway sync links up",
  "Gateway sync reconnects/s",
  // fsync
  "Persist stage latency p50/p99", "Store write latency p50/p99",
  // process
  "CPU", "Resident memory",
];

test("the Grafana dashboard has its key panels, each on the ${datasource} Prometheus data source", () => {
  const d = dashboard();
  assert.equal(d.uid, "jetstream");
  assert.ok(d.schemaVersion >= 36, `schemaVersion ${d.schemaVersion}`);
  assert.ok(d.description, "a description");
  const vars = d.templating.list;
  const ds = vars.find((v) => v.name === "datasource");
  assert.equal(ds?.type, "datasource");
  assert.equal(ds?.query, "prometheus");
  const panels = panelsOf(d).filter((p) => p.type !== "row");
  const titles = panels.map((p) => p.title);
  assert.equal(new Set(titles).size, titles.length, "panel titles are unique");
  for (const k of KEY_PANELS) assert.ok(titles.includes(k), `a panel "${k}"`);
  const ids = panelsOf(d).map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  for (const p of panels) {
    assert.equal(p.datasource?.uid, "${datasource}", `panel "${p.title}": datasource`);
    assert.ok(p.targets?.length > 0, `panel "${p.title}": targets`);
    for (const t of p.targets) assert.ok(t.expr, `panel "${p.title}" ${t.refId}: expr`);
    const g = p.gridPos;
    assert.ok(g && g.x >= 0 && g.w > 0 && g.x + g.w <= 24, `panel "${p.title}": gridPos within 24 columns`);
  }
  for (const v of vars.filter((v) => v.type === "query")) {
    assert.equal(v.datasource?.uid, "${datasource}", `variable ${v.name}: datasource`);
  }
});

test("the dashboard's expressions name only metrics of docs/metrics.md, and promtool parses them", (t) => {
  const exprs = dashboardExprs(dashboard());
  assert.ok(exprs.length > 30);
  assert.deepEqual(unknownMetrics(exprs, contract()), []);

  // As recording rules, with Grafana's variables filled in.
  const filled = exprs.map(({ expr }, i) => ({
    record: `dashboard:expr_${i}`,
    expr: expr
      .replace(/\$__rate_interval|\$__interval|\$__range/g, "5m")
      .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, ".*"),
  }));
  const file = path.join(tempDir(t), "dashboard-rules.yaml");
  fs.writeFileSync(file, stringify({ groups: [{ name: "dashboard", rules: filled }] }));
  const r = promtool(["check", "rules", file]);
  assert.equal(r.status, 0, `promtool cannot parse the dashboard's expressions:\n${r.stdout}${r.stderr}`);
});
