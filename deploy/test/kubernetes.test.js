// The Kubernetes overlays (deploy/kubernetes/overlays/*), rendered with
// `kubectl kustomize` and checked offline: every object against the API's
// definitions (api_fields.js), and what each overlay promises in
// deploy/README.md (restricted pods, limits, disruption budgets, spread,
// network policy, metrics, configuration rollout, probes and drain windows,
// the store).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { validateObject } from "./api_fields.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const kubernetesDir = path.join(repo, "deploy/kubernetes");
const overlays = fs
  .readdirSync(path.join(kubernetesDir, "overlays"), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

const SYNC_CLIENT_LABEL = "jetstream.io/sync-client";

// The objects `kubectl kustomize dir` renders.
function render(dir) {
  const r = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  if (r.error) {
    throw new Error(`kubectl cannot run (${r.error.message}); tools/setup.sh installs it`);
  }
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${r.stderr}`);
  const docs = parseAllDocuments(r.stdout);
  for (const d of docs) if (d.errors.length) throw new Error(`${dir}: ${d.errors[0].message}`);
  return docs.map((d) => d.toJS()).filter((o) => o !== null);
}

const rendered = new Map();
function objectsOf(overlay) {
  if (!rendered.has(overlay)) rendered.set(overlay, render(path.join(kubernetesDir, "overlays", overlay)));
  return rendered.get(overlay);
}

function matches(selector, labels) {
  const want = selector?.matchLabels ?? {};
  if (selector?.matchExpressions?.length) return false; // not used here
  return Object.keys(want).length > 0 && Object.entries(want).every(([k, v]) => labels?.[k] === v);
}

const WORKLOAD_KINDS = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"];
function workloads(objects) {
  return objects.filter((o) => WORKLOAD_KINDS.includes(o.kind));
}
function byComponent(objects, component) {
  const w = workloads(objects).filter(
    (o) => o.spec.template.metadata.labels["app.kubernetes.io/component"] === component,
  );
  assert.equal(w.length, 1, `one ${component} workload`);
  return w[0];
}
function container(workload) {
  assert.equal(workload.spec.template.spec.containers.length, 1, `${workload.metadata.name}: one container`);
  return workload.spec.template.spec.containers[0];
}
function flag(c, name) {
  const prefix = `--${name}=`;
  const values = (c.args ?? []).filter((a) => a.startsWith(prefix)).map((a) => a.slice(prefix.length));
  return values.length ? values[values.length - 1] : undefined;
}
function seconds(duration) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(duration ?? "");
  assert.ok(m, `a duration: ${duration}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60 }[m[2]];
}
function port(c, name) {
  const p = (c.ports ?? []).find((x) => x.name === name);
  assert.ok(p, `${c.name} has a port named ${name}`);
  return p.containerPort;
}
function envVar(c, name) {
  return (c.env ?? []).find((e) => e.name === name);
}

for (const overlay of overlays) {
  test(`${overlay}: kubectl kustomize renders it, and every object is valid against the Kubernetes API definitions`, async () => {
    const objects = objectsOf(overlay);
    assert.ok(objects.length > 0);
    const problems = [];
    for (const o of objects) problems.push(...(await validateObject(o)));
    assert.deepEqual(problems, []);
  });

  test(`${overlay}: every pod meets Pod Security "restricted", as a numeric non-root user on a read-only root`, () => {
    const all = workloads(objectsOf(overlay));
    assert.ok(all.length >= 2);
    for (const w of all) {
      const spec = w.spec.template.spec;
      const name = w.metadata.name;
      const pod = spec.securityContext ?? {};
      assert.equal(pod.runAsNonRoot, true, `${name}: runAsNonRoot`);
      assert.ok(Number.isInteger(pod.runAsUser) && pod.runAsUser > 0, `${name}: numeric non-root runAsUser`);
      for (const forbidden of ["hostNetwork", "hostPID", "hostIPC"]) assert.ok(!spec[forbidden], `${name}: ${forbidden}`);
      for (const v of spec.volumes ?? []) assert.ok(!v.hostPath, `${name}: hostPath volume ${v.name}`);
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        const sc = c.securityContext ?? {};
        const where = `${name}/${c.name}`;
        assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
        assert.ok(!sc.privileged, `${where}: privileged`);
        assert.deepEqual(sc.capabilities?.drop, ["ALL"], `${where}: capabilities drop ALL`);
        assert.deepEqual(sc.capabilities?.add ?? [], [], `${where}: no capabilities added`);
        assert.equal(sc.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
        assert.ok(sc.runAsNonRoot ?? pod.runAsNonRoot, `${where}: runAsNonRoot`);
        if (sc.runAsUser !== undefined) assert.ok(sc.runAsUser > 0, `${where}: runAsUser`);
        const seccomp = sc.seccompProfile?.type ?? pod.seccompProfile?.type;
        assert.equal(seccomp, "RuntimeDefault", `${where}: seccompProfile`);
      }
    }
  });

  test(`${overlay}: every container has CPU and memory requests and limits`, () => {
    for (const w of workloads(objectsOf(overlay))) {
      for (const c of w.spec.template.spec.containers) {
        for (const kind of ["requests", "limits"]) {
          for (const resource of ["cpu", "memory"]) {
            assert.ok(c.resources?.[kind]?.[resource], `${w.metadata.name}/${c.name}: ${kind}.${resource}`);
          }
        }
      }
    }
  });

  test(`${overlay}: every workload has a PodDisruptionBudget and topology spread constraints over its own pods`, () => {
    const objects = objectsOf(overlay);
    const budgets = objects.filter((o) => o.kind === "PodDisruptionBudget");
    for (const w of workloads(objects)) {
      const labels = w.spec.template.metadata.labels;
      const mine = budgets.filter((b) => matches(b.spec.selector, labels));
      assert.equal(mine.length, 1, `${w.metadata.name}: one PodDisruptionBudget`);
      // A budget that allows no disruption would block every node drain.
      assert.ok(mine[0].spec.maxUnavailable >= 1 || mine[0].spec.minAvailable < w.spec.replicas,
        `${w.metadata.name}: its budget allows a drain`);
      const spread = w.spec.template.spec.topologySpreadConstraints ?? [];
      assert.ok(spread.length > 0, `${w.metadata.name}: topologySpreadConstraints`);
      for (const s of spread) assert.ok(matches(s.labelSelector, labels), `${w.metadata.name}: spread selects its pods`);
      assert.ok(spread.some((s) => s.topologyKey === "kubernetes.io/hostname"), `${w.metadata.name}: spread over nodes`);
    }
  });

  test(`${overlay}: only gateways and pods labelled ${SYNC_CLIENT_LABEL}: "true" reach the SyncService port`, () => {
    const objects = objectsOf(overlay);
    const sync = byComponent(objects, "syncservice");
    const gateway = byComponent(objects, "gateway");
    const syncLabels = sync.spec.template.metadata.labels;
    const grpc = port(container(sync), "grpc");
    const policies = objects.filter((o) => o.kind === "NetworkPolicy" && matches(o.spec.podSelector, syncLabels));
    assert.ok(policies.length > 0, "a NetworkPolicy selects the sync service's pods");
    for (const p of policies) assert.ok(p.spec.policyTypes.includes("Ingress"), `${p.metadata.name}: Ingress`);

    // Who may open a connection to the gRPC port of a sync service pod in
    // this namespace, with these labels?
    const admitted = (labels, sameNamespace = true) =>
      policies.some((p) =>
        (p.spec.ingress ?? []).some((rule) => {
          const ports = rule.ports ?? [];
          const coversGrpc = ports.length === 0 || ports.some((x) => x.port === "grpc" || x.port === grpc);
          if (!coversGrpc) return false;
          const from = rule.from ?? [];
          if (from.length === 0) return true;
          return from.some((peer) => {
            if (peer.ipBlock) return true;
            if (peer.namespaceSelector && !sameNamespace) return true;
            if (!sameNamespace) return false;
            return !peer.podSelector || Object.keys(peer.podSelector).length === 0 || matches(peer.podSelector, labels);
          });
        }),
      );
    assert.ok(admitted(gateway.spec.template.metadata.labels), "gateways are admitted");
    assert.ok(admitted({ [SYNC_CLIENT_LABEL]: "true", app: "billing" }), "labelled backends are admitted");
    assert.ok(!admitted({ app: "billing" }), "an unlabelled pod is refused");
    assert.ok(!admitted({ [SYNC_CLIENT_LABEL]: "false" }), "a pod labelled false is refused");
    assert.ok(!admitted({ [SYNC_CLIENT_LABEL]: "true" }, false), "pods of other namespaces are refused");
    assert.ok(!admitted({ "app.kubernetes.io/name": "jetstream" }), "a pod claiming only the app's name is refused");
  });

  test(`${overlay}: metrics on ports of their own, scraped by a PodMonitor and annotations, not on any Service`, () => {
    const objects = objectsOf(overlay);
    const monitors = objects.filter((o) => o.kind === "PodMonitor" || o.kind === "ServiceMonitor");
    assert.ok(monitors.length > 0, "a PodMonitor or ServiceMonitor");
    const services = objects.filter((o) => o.kind === "Service");
    for (const w of workloads(objects)) {
      const c = container(w);
      const labels = w.spec.template.metadata.labels;
      const annotations = w.spec.template.metadata.annotations ?? {};
      const metrics = port(c, "metrics");
      const served = port(c, c.ports.find((p) => p.name !== "metrics").name);
      assert.notEqual(metrics, served, `${w.metadata.name}: metrics apart from the service port`);
      assert.equal(flag(c, "metrics_listen"), `0.0.0.0:${metrics}`, `${w.metadata.name}: --metrics_listen`);
      assert.equal(annotations["prometheus.io/scrape"], "true", `${w.metadata.name}: prometheus.io/scrape`);
      assert.equal(annotations["prometheus.io/port"], String(metrics), `${w.metadata.name}: prometheus.io/port`);
      assert.equal(annotations["prometheus.io/path"], "/metrics", `${w.metadata.name}: prometheus.io/path`);
      const podMonitor = monitors.find(
        (m) => m.kind === "PodMonitor" && matches(m.spec.selector, labels) &&
          m.spec.podMetricsEndpoints.some((e) => e.port === "metrics" && (e.path ?? "/metrics") === "/metrics"),
      );
      assert.ok(podMonitor, `${w.metadata.name}: a PodMonitor scrapes its metrics port`);
      for (const s of services.filter((s) => matches({ matchLabels: s.spec.selector }, labels))) {
        for (const p of s.spec.ports) {
          assert.ok(p.targetPort !== "metrics" && p.targetPort !== metrics && p.port !== metrics,
            `Service ${s.metadata.name} exposes the metrics port`);
        }
      }
    }
  });

  test(`${overlay}: the sync service's configuration comes from a ConfigMap whose name changes with its content`, () => {
    const objects = objectsOf(overlay);
    const sync = byComponent(objects, "syncservice");
    const c = container(sync);
    const maps = objects.filter((o) => o.kind === "ConfigMap");
    assert.equal(maps.length, 1);
    const map = maps[0];
    assert.match(map.metadata.name, /^jetstream-config-[a-z0-9]{6,}$/, "a content hash in the name");
    const volume = sync.spec.template.spec.volumes.find((v) => v.configMap);
    assert.equal(volume.configMap.name, map.metadata.name);
    const mount = c.volumeMounts.find((m) => m.name === volume.name);
    assert.equal(mount.readOnly, true);
    for (const [key, flagName] of [["schema.json", "schema"], ["scopes.json", "scopes"]]) {
      assert.equal(flag(c, flagName), `${mount.mountPath}/${key}`, `--${flagName} reads the ConfigMap`);
      assert.ok(map.data[key], `the ConfigMap has ${key}`);
    }

    // A changed scopes file: a new ConfigMap name, so a new pod template
    // (a rolling restart); nothing else changes.
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), "jetstream-kustomize-"));
    try {
      fs.cpSync(kubernetesDir, copy, { recursive: true });
      const scopesFile = path.join(copy, "base/config/scopes.json");
      const scopes = JSON.parse(fs.readFileSync(scopesFile, "utf8"));
      scopes.changedForTest = true;
      fs.writeFileSync(scopesFile, JSON.stringify(scopes));
      const changed = render(path.join(copy, "overlays", overlay));
      const changedMap = changed.find((o) => o.kind === "ConfigMap");
      const changedSync = byComponent(changed, "syncservice");
      assert.notEqual(changedMap.metadata.name, map.metadata.name);
      assert.notDeepEqual(changedSync.spec.template, sync.spec.template);
      assert.deepEqual(byComponent(changed, "gateway"), byComponent(objects, "gateway"));
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
  });

  test(`${overlay}: probes, preStop and grace periods fit the programs' drain windows`, () => {
    const objects = objectsOf(overlay);
    const sync = byComponent(objects, "syncservice");
    const s = container(sync);
    const grpc = port(s, "grpc");
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      assert.equal(s[probe]?.grpc?.port, grpc, `sync service ${probe}: gRPC health on its port`);
    }
    const shutdownGrace = seconds(flag(s, "shutdown_grace") ?? "5s");
    assert.ok(sync.spec.template.spec.terminationGracePeriodSeconds > shutdownGrace,
      "sync service: grace period longer than --shutdown_grace");

    const gateway = byComponent(objects, "gateway");
    const g = container(gateway);
    assert.equal(g.livenessProbe?.httpGet?.path, "/healthz");
    assert.equal(g.readinessProbe?.httpGet?.path, "/readyz");
    for (const probe of [g.livenessProbe, g.readinessProbe]) {
      assert.ok([port(g, "http"), "http"].includes(probe.httpGet.port), "gateway probes on its HTTP port");
    }
    const sleep = g.lifecycle?.preStop?.exec?.command;
    assert.ok(Array.isArray(sleep) && /sleep$/.test(sleep[0]), "gateway preStop sleeps");
    const drain = seconds(flag(g, "drain_window") ?? "10s");
    assert.ok(gateway.spec.template.spec.terminationGracePeriodSeconds > Number(sleep[1]) + drain,
      "gateway: grace period longer than preStop plus --drain_window");
    assert.equal(gateway.spec.strategy.rollingUpdate.maxUnavailable, 0, "gateway rollout keeps capacity");
  });

  test(`${overlay}: gateways find the sync service through one headless Service, with no replica list`, () => {
    const objects = objectsOf(overlay);
    const sync = byComponent(objects, "syncservice");
    const g = container(byComponent(objects, "gateway"));
    const seed = flag(g, "sync_service");
    assert.ok(!seed.includes(","), `one seed, not a list: ${seed}`);
    const m = /^dns:\/\/\/([a-z0-9-]+)\.\$\(POD_NAMESPACE\)\.svc\.cluster\.local:(\d+)$/.exec(seed);
    assert.ok(m, `a DNS seed in the pod's namespace: ${seed}`);
    assert.equal(envVar(g, "POD_NAMESPACE")?.valueFrom?.fieldRef?.fieldPath, "metadata.namespace");
    const service = objects.find((o) => o.kind === "Service" && o.metadata.name === m[1]);
    assert.ok(service, `Service ${m[1]}`);
    assert.equal(service.spec.clusterIP, "None", "headless");
    assert.ok(matches({ matchLabels: service.spec.selector }, sync.spec.template.metadata.labels));
    assert.ok(service.spec.ports.some((p) => String(p.port) === m[2]));
    assert.equal(sync.spec.serviceName, service.metadata.name);
  });

  test(`${overlay}: no secret on any command line`, () => {
    for (const w of workloads(objectsOf(overlay))) {
      for (const c of w.spec.template.spec.containers) {
        for (const a of [...(c.command ?? []), ...(c.args ?? [])]) {
          assert.doesNotMatch(a, /password|passwd|secret|token|PGPASSWORD/i, `${w.metadata.name}: ${a}`);
          assert.doesNotMatch(a, /postgres:.+/, `${w.metadata.name}: a connection string on the command line: ${a}`);
        }
      }
    }
  });
}

test("sqlite: one sync service replica, its store on a PersistentVolumeClaim", () => {
  const objects = objectsOf("sqlite");
  const sync = byComponent(objects, "syncservice");
  assert.equal(sync.kind, "StatefulSet");
  assert.equal(sync.spec.replicas, 1);
  const claim = sync.spec.volumeClaimTemplates?.[0];
  assert.ok(claim, "a volumeClaimTemplate");
  assert.deepEqual(claim.spec.accessModes, ["ReadWriteOnce"]);
  const c = container(sync);
  const mount = c.volumeMounts.find((m) => m.name === claim.metadata.name);
  assert.ok(mount, "the claim is mounted");
  const store = flag(c, "store");
  assert.ok(store.startsWith(`sqlite:${mount.mountPath}/`), `the store on the claim: ${store}`);
  assert.ok(sync.spec.template.spec.securityContext.fsGroup > 0, "the claim is writable by the pod's group");
});

test("postgres: three replicas, libpq's parameters from a Secret in the environment, replica names from the pod", () => {
  const objects = objectsOf("postgres");
  const sync = byComponent(objects, "syncservice");
  assert.equal(sync.spec.replicas, 3);
  assert.ok(!sync.spec.volumeClaimTemplates, "no volumes");
  const c = container(sync);
  assert.equal(flag(c, "store"), "postgres:", "an empty connection string: libpq reads PG*");
  const secrets = new Set();
  for (const name of ["PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE"]) {
    const ref = envVar(c, name)?.valueFrom?.secretKeyRef;
    assert.ok(ref, `${name} from a Secret`);
    assert.equal(ref.key, name);
    secrets.add(ref.name);
  }
  assert.deepEqual([...secrets], ["jetstream-postgres"]);
  assert.equal(flag(c, "member_id"), "$(POD_NAME)");
  assert.equal(envVar(c, "POD_NAME")?.valueFrom?.fieldRef?.fieldPath, "metadata.name");
  assert.equal(flag(c, "advertise_address"), `$(POD_IP):${port(c, "grpc")}`);
  assert.equal(envVar(c, "POD_IP")?.valueFrom?.fieldRef?.fieldPath, "status.podIP");
  assert.ok(seconds(flag(c, "lease_ttl")) > 0);
  // The Secret is the operator's: never rendered from the repository.
  assert.ok(!objects.some((o) => o.kind === "Secret"));
});

test("the base's configuration files are the demo's (syncservice/config)", () => {
  for (const [mine, demo] of [["schema.json", "demo_schema.json"], ["scopes.json", "demo_scopes.json"]]) {
    assert.equal(
      fs.readFileSync(path.join(kubernetesDir, "base/config", mine), "utf8"),
      fs.readFileSync(path.join(repo, "syncservice/config", demo), "utf8"),
      `deploy/kubernetes/base/config/${mine}`,
    );
  }
});

test("the validation refuses broken objects: a wrong type, a misspelt field, an unknown kind", async () => {
  const pristine = byComponent(objectsOf(overlays[0]), "syncservice");
  assert.deepEqual(await validateObject(pristine), []);

  const wrongType = structuredClone(pristine);
  wrongType.spec.replicas = "three";
  assert.match((await validateObject(wrongType)).join("\n"), /replicas must be integer/);

  const misspelt = structuredClone(pristine);
  delete misspelt.spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem;
  misspelt.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
  assert.match((await validateObject(misspelt)).join("\n"), /securityContext\.readOnlyRootFileSystem: not a field/);

  const missing = structuredClone(pristine);
  delete missing.spec.template.spec.containers[0].name;
  assert.match((await validateObject(missing)).join("\n"), /required property 'name'|must have required property name/);

  const monitor = structuredClone(objectsOf(overlays[0]).find((o) => o.kind === "PodMonitor"));
  monitor.spec.podMetricsEndpoints[0].interval = 30;
  assert.match((await validateObject(monitor)).join("\n"), /interval must be string/);

  assert.match((await validateObject({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } })).join("\n"),
    /no API definition/);
});
