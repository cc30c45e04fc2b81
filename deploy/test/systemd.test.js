// The systemd units (deploy/systemd): installed by deploy/systemd/install.sh
// into a temporary root, every path they name exists there, and
// `systemd-analyze verify` accepts them without a single warning (it exits
// 0 on unknown directives and bad values, only printing them, so any output
// counts as a failure). The ExecStart programs are stubs: verify needs them
// to exist and be executable, and the unit copies it checks name them under
// the temporary root.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const unitsDir = path.join(repo, "deploy/systemd");
const units = fs.readdirSync(unitsDir).filter((f) => f.endsWith(".service")).sort();

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "jetstream-systemd-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// install.sh into `root`, with stub programs.
function install(t) {
  const work = tempDir(t);
  const bin = path.join(work, "bazel-bin");
  for (const b of ["gateway/gateway", "syncservice/syncservice"]) {
    fs.mkdirSync(path.dirname(path.join(bin, b)), { recursive: true });
    fs.writeFileSync(path.join(bin, b), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
  }
  const root = path.join(work, "root");
  const r = spawnSync("bash", [path.join(unitsDir, "install.sh"), "--root", root, "--bin-dir", bin], { encoding: "utf8" });
  assert.equal(r.status, 0, `install.sh failed:\n${r.stdout}${r.stderr}`);
  return { work, root };
}

// The unit's directives (continuation lines joined), as [section, key, value].
function directives(text) {
  const out = [];
  let section = "";
  const lines = text.replace(/\\\n/g, " ").split("\n");
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = s[1];
      continue;
    }
    const eq = line.indexOf("=");
    out.push([section, line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return out;
}
function value(text, key) {
  const found = directives(text).filter(([, k]) => k === key);
  return found.length ? found[found.length - 1][2] : undefined;
}
function execStart(text) {
  return value(text, "ExecStart").split(/\s+/);
}

// systemd-analyze verify of the units in `dir` (all at once, so their
// dependencies on each other resolve); ok only if it printed nothing.
function verify(dir, files) {
  const r = spawnSync("systemd-analyze", ["verify", ...files.map((f) => path.join(dir, f))], { encoding: "utf8" });
  if (r.error) throw new Error(`systemd-analyze cannot run (${r.error.message}); tools/setup.sh installs systemd`);
  const output = `${r.stdout}${r.stderr}`.trim();
  return { ok: r.status === 0 && output === "", output: output || `exit ${r.status}` };
}

// Copies of the installed units whose programs are named under `root`.
function rooted(t, root) {
  const dir = tempDir(t);
  for (const unit of units) {
    const text = fs.readFileSync(path.join(root, "etc/systemd/system", unit), "utf8");
    fs.writeFileSync(path.join(dir, unit), text.replaceAll("/usr/local/bin/", `${root}/usr/local/bin/`));
  }
  return dir;
}

test("install.sh puts every program and configuration file the units name where they name it", (t) => {
  const { root } = install(t);
  assert.ok(units.length >= 2);
  for (const unit of units) {
    const text = fs.readFileSync(path.join(root, "etc/systemd/system", unit), "utf8");
    const [program, ...args] = execStart(text);
    fs.accessSync(path.join(root, program), fs.constants.X_OK);
    for (const a of args) {
      const m = /^--(schema|scopes|hooks|auth_tokens_file|tls_cert|tls_key|tls_client_ca)=(.+)$/.exec(a);
      if (m) assert.ok(fs.existsSync(path.join(root, m[2])), `${unit}: ${m[2]} (installed)`);
    }
  }
});

test("systemd-analyze verify accepts the units without a warning", (t) => {
  const { root } = install(t);
  const result = verify(rooted(t, root), units);
  assert.ok(result.ok, result.output);
});

test("the sync service keeps its store in its StateDirectory, and runs as a dynamic user", () => {
  const text = fs.readFileSync(path.join(unitsDir, "jetstream-syncservice.service"), "utf8");
  assert.equal(value(text, "DynamicUser"), "yes");
  const state = value(text, "StateDirectory");
  assert.ok(state, "StateDirectory");
  const store = execStart(text).find((a) => a.startsWith("--store="));
  assert.ok(store?.startsWith(`--store=sqlite:/var/lib/${state}/`), `${store} under /var/lib/${state}`);
  assert.equal(value(text, "Restart"), "on-failure");
  assert.ok(Number(value(text, "StartLimitBurst")) > 0, "a start limit ends a crash loop");
});

test("deploy/README.md names the paths the units use", () => {
  const readme = fs.readFileSync(path.join(repo, "deploy/README.md"), "utf8");
  for (const unit of units) {
    const text = fs.readFileSync(path.join(unitsDir, unit), "utf8");
    assert.ok(readme.includes(unit), `README names ${unit}`);
    const [program, ...args] = execStart(text);
    assert.ok(readme.includes(program), `README names ${program}`);
    for (const a of args) {
      const m = /^--(?:schema|scopes)=(.+)$/.exec(a) ?? /^--store=sqlite:(.+)$/.exec(a);
      if (m) assert.ok(readme.includes(m[1]), `README names ${m[1]}`);
    }
  }
});

test("the check fails for broken units: a misspelt directive, a bad value, a missing program", (t) => {
  const { root } = install(t);
  const good = rooted(t, root);
  const sync = fs.readFileSync(path.join(good, "jetstream-syncservice.service"), "utf8");
  const broken = tempDir(t);
  const cases = {
    "misspelt.service": sync.replace("StateDirectory=", "StateDirectoy="),
    "badvalue.service": sync.replace("Restart=on-failure", "Restart=sometimes"),
    "missing.service": sync.replace(`${root}/usr/local/bin/jetstream-syncservice`, `${root}/usr/local/bin/jetstream-absent`),
  };
  for (const [name, text] of Object.entries(cases)) {
    assert.notEqual(text, sync, `${name} differs from the unit`);
    fs.writeFileSync(path.join(broken, name), text);
    const result = verify(broken, [name]);
    assert.ok(!result.ok, `${name} passed verify`);
  }
});
