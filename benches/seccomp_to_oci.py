#!/usr/bin/env python3
"""Convert a Docker-format seccomp profile to OCI `linux.seccomp` the way Docker does.

    seccomp_to_oci.py PROFILE CONFIG [--seccomp-only] [--arch GOARCH] [-o OUT]

PROFILE is a Docker/podman profile (e.g. /usr/share/containers/seccomp.json
from Debian's golang-github-containers-common); CONFIG is the bundle's
config.json, whose `process.capabilities.bounding` decides which
capability-gated rules are kept. Prints CONFIG with `linux.seccomp` set, or
with --seccomp-only just the LinuxSeccomp object.

The rules are those of Docker's profiles/seccomp setupSeccomp():
- architectures: the archMap entry of the native architecture, followed by
  its subArchitectures (amd64 -> SCMP_ARCH_X86_64, X86, X32);
- a rule is dropped if `excludes` names this architecture or a capability in
  the bounding set, or if `includes` names architectures without this one or
  capabilities not all in the bounding set (minKernel against the running
  kernel);
- kept rules carry only OCI fields: names, action, errnoRet, args (Docker's
  `includes`, `excludes`, `comment` and the `errno` name are dropped, as is
  the top-level `archMap` and `defaultErrno`).
"""

import argparse
import json
import os
import platform
import sys

# Go's GOARCH for `uname -m`, and the libseccomp name of each GOARCH.
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "s390x": "s390x",
          "ppc64le": "ppc64le", "riscv64": "riscv64", "armv7l": "arm"}
NATIVE = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64", "386": "SCMP_ARCH_X86",
          "s390x": "SCMP_ARCH_S390X", "ppc64le": "SCMP_ARCH_PPC64LE",
          "riscv64": "SCMP_ARCH_RISCV64", "arm": "SCMP_ARCH_ARM"}
OCI_SYSCALL_FIELDS = ("names", "action", "errnoRet", "args")
OCI_TOP_FIELDS = ("defaultAction", "defaultErrnoRet", "listenerPath", "listenerMetadata", "flags")


def kernel_version():
    parts = platform.release().split("-")[0].split(".")
    return tuple(int(p) for p in parts[:2] if p.isdigit())


def min_kernel_ok(spec):
    if not spec:
        return True
    want = tuple(int(p) for p in spec.split(".")[:2])
    return kernel_version() >= want


def convert(profile, bounding, goarch):
    if profile.get("architectures") and profile.get("archMap"):
        raise ValueError("profile has both architectures and archMap")
    out = {k: profile[k] for k in OCI_TOP_FIELDS if profile.get(k) is not None}
    arches = list(profile.get("architectures") or [])
    native = NATIVE.get(goarch)
    for entry in profile.get("archMap") or []:
        if entry["architecture"] == native:
            arches += [entry["architecture"], *entry.get("subArchitectures", [])]
    if arches:
        out["architectures"] = arches
    caps = set(bounding)
    syscalls = []
    for rule in profile.get("syscalls") or []:
        inc = rule.get("includes") or {}
        exc = rule.get("excludes") or {}
        if goarch in (exc.get("arches") or []):
            continue
        if caps & set(exc.get("caps") or []):
            continue
        if exc.get("minKernel") and min_kernel_ok(exc["minKernel"]):
            continue
        if inc.get("arches") and goarch not in inc["arches"]:
            continue
        if not set(inc.get("caps") or []) <= caps:
            continue
        if not min_kernel_ok(inc.get("minKernel")):
            continue
        names = rule.get("names") or ([rule["name"]] if rule.get("name") else [])
        new = {"names": names}
        new.update({k: rule[k] for k in OCI_SYSCALL_FIELDS[1:] if rule.get(k) is not None})
        syscalls.append(new)
    out["syscalls"] = syscalls
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile")
    ap.add_argument("config")
    ap.add_argument("--seccomp-only", action="store_true")
    ap.add_argument("--arch", default=GOARCH.get(os.uname().machine, os.uname().machine),
                    help="Go architecture name (default: this machine's)")
    ap.add_argument("-o", "--output", help="write here instead of stdout")
    args = ap.parse_args()

    with open(args.profile, encoding="utf-8") as f:
        profile = json.load(f)
    with open(args.config, encoding="utf-8") as f:
        config = json.load(f)
    bounding = ((config.get("process") or {}).get("capabilities") or {}).get("bounding") or []
    seccomp = convert(profile, bounding, args.arch)
    if args.seccomp_only:
        result = seccomp
    else:
        config.setdefault("linux", {})["seccomp"] = seccomp
        result = config
    text = json.dumps(result, indent=2) + "\n"
    if args.output:
        tmp = args.output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.output)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
