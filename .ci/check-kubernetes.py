#!/usr/bin/env python3
"""Checks deploy/kubernetes without a cluster: the kustomization lists every
manifest, and the workload keeps the security basics (non-root, read-only
root filesystem, no privilege escalation, no capabilities, resource requests
and limits, probes on /healthz and /readyz, secrets only as files, two
replicas under a PodDisruptionBudget, Services that select the pods).
Schema validation is kubernetes-validate's job (.ci/run runs both)."""

import pathlib
import sys

import yaml

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/kubernetes")
kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
listed = set(kustomization["resources"])
present = {p.name for p in root.glob("*.yaml")} - {"kustomization.yaml"}
assert listed == present, f"kustomization lists {sorted(listed)}, the folder has {sorted(present)}"

docs = [d for name in sorted(listed) for d in yaml.safe_load_all((root / name).read_text()) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)

problems = []
def need(ok, what):
    if not ok:
        problems.append(what)

(deployment,) = by_kind["Deployment"]
labels = deployment["spec"]["template"]["metadata"]["labels"]
pod = deployment["spec"]["template"]["spec"]
need(deployment["spec"]["replicas"] >= 2, "at least two replicas")
need(pod.get("automountServiceAccountToken") is False, "no service account token mounted")
for flag in ("hostNetwork", "hostPID", "hostIPC"):
    need(not pod.get(flag), f"no {flag}")
pod_sc = pod.get("securityContext", {})
need(pod_sc.get("runAsNonRoot") is True, "pod runs as non-root")
need(pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp RuntimeDefault")
for c in pod["containers"]:
    name = c["name"]
    sc = c.get("securityContext", {})
    need(sc.get("readOnlyRootFilesystem") is True, f"{name}: read-only root filesystem")
    need(sc.get("allowPrivilegeEscalation") is False, f"{name}: no privilege escalation")
    need(not sc.get("privileged"), f"{name}: not privileged")
    need("ALL" in sc.get("capabilities", {}).get("drop", []), f"{name}: drops all capabilities")
    need(":" in c["image"] and not c["image"].endswith(":latest"), f"{name}: a pinned image tag")
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            need(r in res.get(kind, {}), f"{name}: {kind}.{r}")
    need(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", f"{name}: liveness on /healthz")
    need(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", f"{name}: readiness on /readyz")
    for env in c.get("env", []):
        secretish = any(w in env["name"] for w in ("KEY_ENCRYPTION_KEY", "DATABASE_URL", "SECRET", "PASSWORD"))
        need(not secretish or env["name"].endswith("_FILE"), f"{name}: {env['name']} is a secret; pass it as a file")
for cm in by_kind.get("ConfigMap", []):
    for key in cm.get("data", {}):
        need(not any(w in key for w in ("KEY_ENCRYPTION_KEY", "DATABASE_URL", "SECRET", "PASSWORD")),
             f"ConfigMap {cm['metadata']['name']}: {key} is a secret")
for svc in by_kind.get("Service", []):
    selector = svc["spec"]["selector"]
    need(all(labels.get(k) == v for k, v in selector.items()), f"Service {svc['metadata']['name']} selects the pods")
policies = by_kind.get("NetworkPolicy", [])
need(any(all(labels.get(k) == v for k, v in p["spec"]["podSelector"].get("matchLabels", {}).items())
         for p in policies), "a NetworkPolicy guards the pods' admin port")
pdbs = by_kind.get("PodDisruptionBudget", [])
need(any(all(labels.get(k) == v for k, v in p["spec"]["selector"]["matchLabels"].items()) for p in pdbs),
     "a PodDisruptionBudget covers the pods")

for p in problems:
    print(f"deploy/kubernetes: {p}")
if problems:
    sys.exit(1)
print(f"deploy/kubernetes: ok ({len(docs)} resources)")
