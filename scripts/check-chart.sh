#!/usr/bin/env bash
# Offline checks of the Helm chart charts/pve-gitops (no cluster, no network, no helm binary):
#
#   1. values.schema.json is a valid JSON Schema; values.yaml and every tests/*.yaml pass it
#      (check-jsonschema); every tests/bad/*.yaml marked `# expect: schema` is rejected by it.
#   2. helm lint --strict (helm-python-sdk, the Helm v4 library) with the default values and each
#      tests/*.yaml; render each (the schema is enforced as on `helm install`); every
#      tests/bad/*.yaml is refused by helm (schema or the chart's own `fail` checks, with the
#      message its `# expect: render: TEXT` line names).
#   3. Checks of the rendered objects: one replica with Recreate, non-root, read-only root
#      filesystem, no capabilities, seccomp RuntimeDefault, no Secret objects (the chart only
#      references Secrets), every mount has a volume, Services select the Deployments and name
#      container ports, the ServiceMonitor selects the Services' metrics port.
#  3b. The flags the Deployments pass exist in `pve-gitops watch --help` (when a binary is
#      found: $PVE_GITOPS_BIN, target/release or target/debug; otherwise a note says so).
#   4. kubernetes-validate --strict of every rendered object against each of $KUBE_VERSIONS.
#      ServiceMonitor (a prometheus-operator CRD) has no schema there: it is listed as skipped
#      and covered by the checks of step 3 only. Any other kind without a schema fails.
#   5. yamllint (strict) of the rendered output.
#
# Needs: pip install helm-python-sdk kubernetes-validate check-jsonschema yamllint
# (versions known to work: docs/helm.md). Exit status 0 when everything passed, 1 on a
# failed check, 2 when a tool is missing.
#
# Environment: PYTHON (default python3), KUBE_VERSIONS (default "1.25.0 1.37.0": the chart's
# kubeVersion floor and the newest schema kubernetes-validate 1.37 bundles), KEEP_RENDERED=DIR
# (write the rendered manifests there instead of a temporary directory), PVE_GITOPS_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=charts/pve-gitops
PYTHON=${PYTHON:-python3}
KUBE_VERSIONS=${KUBE_VERSIONS:-1.25.0 1.37.0}
SKIP_KINDS="ServiceMonitor"

missing=()
"$PYTHON" -c 'import helm_python, yaml' 2>/dev/null || missing+=("helm-python-sdk (python module helm_python) for $PYTHON")
for tool in kubernetes-validate check-jsonschema yamllint; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  printf 'check-chart: missing: %s\n' "${missing[@]}" >&2
  echo "check-chart: install with: pip install helm-python-sdk kubernetes-validate check-jsonschema yamllint" >&2
  exit 2
fi

if [ -n "${KEEP_RENDERED:-}" ]; then
  OUT=$KEEP_RENDERED
  rm -rf "$OUT" && mkdir -p "$OUT"
else
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

good_values=("$CHART/values.yaml" "$CHART"/tests/*.yaml)
bad_values=("$CHART"/tests/bad/*.yaml)

echo "== 1. values.schema.json (check-jsonschema $(check-jsonschema --version 2>&1 | awk '{print $NF}'))"
check-jsonschema --check-metaschema "$CHART/values.schema.json" || fail "values.schema.json is not a valid JSON Schema"
check-jsonschema --schemafile "$CHART/values.schema.json" "${good_values[@]}" || fail "a values file does not match values.schema.json"
schema_bad=()
for f in "${bad_values[@]}"; do
  grep -q '^# expect: schema' "$f" && schema_bad+=("$f")
done
# One run for all of them (check-jsonschema starts slowly); each file must have an error.
if out=$(check-jsonschema --schemafile "$CHART/values.schema.json" "${schema_bad[@]}" 2>&1); then
  fail "values.schema.json accepted every tests/bad file marked '# expect: schema'"
else
  for f in "${schema_bad[@]}"; do
    if echo "$out" | grep -qF "$f::"; then
      echo "rejected as expected: $f"
      echo "$out" | grep -F "$f::" | sed "s|^ *$f::|    |"
    else
      fail "$f: accepted by values.schema.json, but it must be rejected"
    fi
  done
fi

echo "== 2+3. helm lint, render, checks of the rendered objects (helm-python-sdk)"
"$PYTHON" - "$CHART" "$OUT" "$SKIP_KINDS" "${good_values[@]}" -- "${bad_values[@]}" <<'PY' || fail "helm lint / render / rendered-object checks (see above)"
import os
import re
import sys

import helm_python as helm
import yaml

helm.disable_logging()
chart_dir, out_dir, skip_kinds = sys.argv[1], sys.argv[2], set(sys.argv[3].split())
rest = sys.argv[4:]
sep = rest.index("--")
good, bad = rest[:sep], rest[sep + 1:]
RELEASE, NAMESPACE = "pve-gitops", "gitops"
problems = []
validate_list, skipped_list = [], []
flags = set()


def problem(case, msg):
    problems.append(f"{case}: {msg}")
    print(f"FAIL: {case}: {msg}")


def load_values(path):
    if path.endswith("/values.yaml"):
        return {}
    with open(path, encoding="utf-8") as f:
        return helm.values_from_yaml(f.read())


def check_objects(case, objs):
    """Properties the chart promises, checked on the rendered objects."""
    by_kind = {}
    for o in objs:
        by_kind.setdefault(o["kind"], []).append(o)
    if by_kind.get("Secret"):
        problem(case, "the chart rendered a Secret; it must only reference Secrets")
    deployments = by_kind.get("Deployment", [])
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    for d in deployments:
        name = d["metadata"]["name"]
        spec, pod = d["spec"], d["spec"]["template"]["spec"]
        where = f"{case}: Deployment {name}"
        if spec.get("replicas") != 1:
            problem(where, f"replicas is {spec.get('replicas')}, must be 1")
        if spec.get("strategy", {}).get("type") != "Recreate":
            problem(where, "strategy must be Recreate (never two controllers of one cluster)")
        labels = d["spec"]["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in spec["selector"]["matchLabels"].items()):
            problem(where, "the selector does not match the pod labels")
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True:
            problem(where, "pod securityContext.runAsNonRoot must be true")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problem(where, "pod seccompProfile must be RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            problem(where, "the service account token must not be mounted")
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            sc = c.get("securityContext", {})
            if sc.get("readOnlyRootFilesystem") is not True:
                problem(where, f"container {c['name']}: readOnlyRootFilesystem must be true")
            if sc.get("allowPrivilegeEscalation") is not False:
                problem(where, f"container {c['name']}: allowPrivilegeEscalation must be false")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problem(where, f"container {c['name']}: capabilities must drop ALL")
            if not c.get("resources", {}).get("requests"):
                problem(where, f"container {c['name']}: no resource requests")
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    problem(where, f"container {c['name']}: no {probe}")
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            for m in sorted(mounts - volumes.keys()):
                problem(where, f"volumeMount {m} has no volume")
            for v in sorted(volumes.keys() - mounts):
                problem(where, f"volume {v} is not mounted")
            state = [m for m in c.get("volumeMounts", []) if m["name"] == "state"]
            if not state or "emptyDir" not in volumes.get("state", {}):
                problem(where, "the state directory must be an emptyDir")
            args = c.get("args", [])
            if not args or args[0] != "watch":
                problem(where, "the container must run `pve-gitops watch`")
            for a in args:
                if re.match(r"--(api-token|https-token|webhook-secret|join-password)\b(?!-file)", a):
                    problem(where, f"a credential passed as a value: {a.split('=')[0]}")
            ports = {p["name"] for p in c.get("ports", [])}
            flags.update(a.split("=")[0] for a in args if a.startswith("--"))
        svc = services.get(name)
        if svc is None:
            problem(where, "has no Service of the same name")
            continue
        sel = svc["spec"]["selector"]
        if any(labels.get(k) != v for k, v in sel.items()):
            problem(where, f"Service {name} does not select its pods")
        for p in svc["spec"]["ports"]:
            if p["targetPort"] not in ports:
                problem(where, f"Service port {p['name']} targets {p['targetPort']}, not a container port")
    for sm in by_kind.get("ServiceMonitor", []):
        where = f"{case}: ServiceMonitor {sm['metadata']['name']}"
        if sm.get("apiVersion") != "monitoring.coreos.com/v1":
            problem(where, f"apiVersion {sm.get('apiVersion')}")
        sel = sm["spec"]["selector"]["matchLabels"]
        selected = [s for s in services.values()
                    if all(s["metadata"]["labels"].get(k) == v for k, v in sel.items())]
        if len(selected) != len(deployments):
            problem(where, f"selects {len(selected)} Services, expected {len(deployments)}")
        for ep in sm["spec"]["endpoints"]:
            for s in selected:
                if ep["port"] not in {p["name"] for p in s["spec"]["ports"]}:
                    problem(where, f"endpoint port {ep['port']} is not a port of Service {s['metadata']['name']}")


chart = helm.Chart.load(chart_dir)
print(f"helm SDK {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__})")
for path in good:
    case = os.path.splitext(os.path.basename(path))[0]
    case = "defaults" if path.endswith(f"{chart_dir}/values.yaml") else case
    values = load_values(path)
    report = helm.lint(chart_dir, values, strict=True, namespace=NAMESPACE)
    for m in report.get("messages", []):
        line = f"{m['path']}: {m['error'].strip()}"
        if m["severity"] >= 2:
            problem(case, f"helm lint: {line}")
        else:
            print(f"  lint info ({case}): {line}")
    for e in report.get("errors", []):
        problem(case, f"helm lint: {e.strip()}")
    try:
        rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as e:
        problem(case, f"render failed: {e}")
        continue
    case_dir = os.path.join(out_dir, case)
    os.makedirs(case_dir, exist_ok=True)
    objs, n = [], 0
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            if not text.strip():
                problem(case, "NOTES.txt rendered empty")
            continue
        for doc in re.split(r"^---[ \t]*$", text, flags=re.M):
            if not doc.strip() or yaml.safe_load(doc) is None:
                continue
            obj = yaml.safe_load(doc)
            n += 1
            fname = os.path.join(case_dir, f"{n:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml")
            with open(fname, "w", encoding="utf-8") as f:
                f.write("---\n# Source: " + template + "\n" + doc.strip("\n") + "\n")
            objs.append(obj)
            (skipped_list if obj["kind"] in skip_kinds else validate_list).append(fname)
    kinds = ", ".join(sorted({f"{o['kind']}" for o in objs})) or "nothing"
    print(f"rendered {case}: {len(objs)} objects ({kinds})")
    check_objects(case, objs)

for path in bad:
    case = "bad/" + os.path.splitext(os.path.basename(path))[0]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^# expect: (schema|render: (.+))$", text, flags=re.M)
    if not m:
        problem(case, "no `# expect: schema` or `# expect: render: TEXT` line")
        continue
    try:
        chart.render(helm.values_from_yaml(text), name=RELEASE, namespace=NAMESPACE, is_install=True)
        problem(case, "helm rendered it, but it must be refused")
    except helm.HelmError as e:
        msg = str(e).strip()
        if m.group(1) == "schema" and not isinstance(e, helm.HelmValuesError):
            problem(case, f"expected a schema error, got {type(e).__name__}: {msg}")
        elif m.group(2) and m.group(2) not in msg:
            problem(case, f"expected an error containing {m.group(2)!r}, got: {msg}")
        else:
            first = next((l for l in msg.splitlines() if "at '" in l or "error" in l), msg.splitlines()[0])
            print(f"refused as expected: {case}: {first.strip()[:160]}")

with open(os.path.join(out_dir, "validate.list"), "w") as f:
    f.write("".join(p + "\n" for p in validate_list))
with open(os.path.join(out_dir, "skipped.list"), "w") as f:
    f.write("".join(p + "\n" for p in skipped_list))
with open(os.path.join(out_dir, "flags.list"), "w") as f:
    f.write("".join(a + "\n" for a in sorted(flags)))
sys.exit(1 if problems else 0)
PY

# The flags the Deployments pass must exist in the controller's `watch` (a renamed flag in
# controller/src/cli.rs would otherwise only show up as a crash loop).
bin=${PVE_GITOPS_BIN:-}
if [ -z "$bin" ]; then
  # the newer of the two builds
  for b in target/release/pve-gitops target/debug/pve-gitops; do
    if [ -x "$b" ] && { [ -z "$bin" ] || [ "$b" -nt "$bin" ]; }; then bin=$b; fi
  done
fi
help=""
[ -n "$bin" ] && help=$("$bin" watch --help 2>&1 || true)
if [ -n "$bin" ] && echo "$help" | grep -q -- "--source"; then
  echo "== 3b. flags of the rendered Deployments against \`$bin watch --help\`"
  while read -r flag; do
    [ -z "$flag" ] && continue
    if echo "$help" | grep -qE -- "(^|[ ,])$flag([ =,]|\$)"; then
      echo "  $flag ok"
    else
      fail "the chart passes $flag, but \`pve-gitops watch\` has no such flag"
    fi
  done < "$OUT/flags.list"
elif [ -n "${PVE_GITOPS_BIN:-}" ]; then
  fail "PVE_GITOPS_BIN=$PVE_GITOPS_BIN: \`watch --help\` does not list --source; not a pve-gitops binary?"
else
  echo "note: flags of the rendered Deployments not checked: no usable pve-gitops binary in target/ (${bin:-none}; build it, or set PVE_GITOPS_BIN)"
fi

mapfile -t to_validate < <(cat "$OUT/validate.list" 2>/dev/null || true)
mapfile -t skipped < <(cat "$OUT/skipped.list" 2>/dev/null || true)
if [ ${#to_validate[@]} -eq 0 ]; then
  fail "nothing was rendered to validate"
else
  for v in $KUBE_VERSIONS; do
    echo "== 4. kubernetes-validate --strict -k $v: ${#to_validate[@]} objects"
    if out=$(kubernetes-validate --strict --quiet -k "$v" "${to_validate[@]}" 2>&1); then
      [ -n "$out" ] && echo "$out"
    else
      echo "$out"
      fail "kubernetes-validate (Kubernetes $v)"
      continue
    fi
    # Without a schema kubernetes-validate only warns and exits 0: never let that pass.
    if echo "$out" | grep -q "Couldn't find schema"; then
      fail "kubernetes-validate has no schema for a rendered kind (Kubernetes $v); add it to SKIP_KINDS only with checks of its own"
    fi
  done
  for s in "${skipped[@]}"; do
    [ -n "$s" ] && echo "note: not validated by kubernetes-validate (no schema for the CRD kind; checked in step 3): ${s#"$OUT"/}"
  done
fi

echo "== 5. yamllint (strict) of the rendered output"
yamllint -s -d '{extends: default, rules: {line-length: {max: 200}, indentation: {spaces: consistent, indent-sequences: whatever}}}' "$OUT" || fail "yamllint"

if [ "$failures" -gt 0 ]; then
  echo "check-chart: $failures check(s) failed"
  exit 1
fi
echo "check-chart: all checks passed"
