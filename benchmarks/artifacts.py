"""Artifact integrity figures (issue 3), each against a baseline measured in the same run. Prints one JSON object.

- verify: the digest phase against `openssl dgst -sha256` on the same file (throughput ratio), the whole
  relops.release.artifact_verify task (digest + checksum + DSSE signature, through ansible-playbook) against
  the same openssl run (extra seconds), and the peak memory of verification at two file sizes.
- reproducibility: two builds of the demo app and of a synthetic tree, compared byte for byte.
- delta: a minor release of the demo app and of a synthetic tree, delta size against the full artifact and
  against `zstd --patch-from -19 --long` on the same pair (the same tar streams, and the compressed files).
  The collection's delta uses the zstd command line (`delta_method: patch-from`) when the controller has it.

Default sizes finish in about a minute. The issue's headline figures (the 200 MiB tree builds several
zstd -19 packages, so that part takes tens of minutes on a busy 2-core machine):

    .venv/bin/python benchmarks/artifacts.py --only verify --verify-mib 1024
    .venv/bin/python benchmarks/artifacts.py --only reproducible --only delta --tree-mib 200
    .venv/bin/python benchmarks/artifacts.py --only delta --tree-mib 200 --tree-format tar.gz   # faster
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any, Callable, Dict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "build", "src"))
BIN = os.path.dirname(sys.executable)

from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from ansible_collections.relops.release.plugins.module_utils.delta import read_tar_stream  # noqa: E402
from ansible_collections.relops.release.plugins.module_utils.digests import file_digest  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import (  # noqa: E402
    build_statement,
    sign_envelope,
)
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.delta import create_delta  # noqa: E402
from ansible_collections.relops.release.plugins.plugin_utils.artifacts.packaging import (  # noqa: E402
    plan_package,
    write_package,
)

DEMO_APP = os.path.join(REPO, "examples", "demo_app")
WORDS = ["release", "deploy", "verify", "artifact", "service", "health", "rollback", "canary", "config", "ledger"]


def best_of(runs: int, action: Callable[[], Any]) -> float:
    timings = []
    for _run in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def write_random_file(path: str, mib: int) -> None:
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as handle:
        for number in range(mib):
            # A different block each MiB so nothing can shortcut the hashing.
            handle.write(hashlib.sha256(b"%d" % number).digest() + block[32:])


def openssl_sha256(path: str) -> str:
    done = subprocess.run(["openssl", "dgst", "-sha256", "-r", path], check=True, capture_output=True, text=True)
    return done.stdout.split()[0]


def peak_rss_of_verification(path: str, envelope: str, keyring: Dict[str, Any], digest: str) -> float:
    """Peak resident memory (MiB) of a fresh process that verifies the file; includes the interpreter."""
    script = textwrap.dedent(
        """
        import json, resource, sys
        sys.path.insert(0, %r)
        from ansible_collections.relops.release.plugins.plugin_utils.artifacts.attest import load_keyring
        from ansible_collections.relops.release.plugins.plugin_utils.artifacts.verify import (
            VerifyRequest, verify_artifact)
        keyring = load_keyring(json.loads(%r), lambda path: b"")
        report = verify_artifact(VerifyRequest(path=%r, checksum="sha256:%s", envelope_text=open(%r, "rb").read(),
                                               keyring=keyring, check_manifest=False))
        assert not report.reasons, report.reasons
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    ) % (os.path.join(REPO, "build", "src"), json.dumps(keyring), path, digest, envelope)
    done = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return round(int(done.stdout.strip()) / 1024, 1)


def task_seconds(workdir: str, path: str, envelope: str, keyring_path: str, digest: str) -> float:
    """Duration of the artifact_verify task itself, timed inside the play around that one task."""
    play = os.path.join(workdir, "verify.yml")
    with open(play, "w", encoding="utf-8") as handle:
        handle.write(
            textwrap.dedent(
                """
                - name: Time artifact_verify
                  hosts: localhost
                  gather_facts: false
                  tasks:
                    - name: Start
                      ansible.builtin.set_fact:
                        started: "{{ now(utc=true).timestamp() }}"
                    - name: Verify
                      relops.release.artifact_verify:
                        path: %s
                        checksum: sha256:%s
                        envelope: %s
                        keyring: %s
                        check_manifest: false
                    - name: Report
                      ansible.builtin.debug:
                        msg: "ELAPSED {{ now(utc=true).timestamp() | float - started | float }}"
                """
                % (path, digest, envelope, keyring_path)
            )
        )
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), PATH=BIN + os.pathsep + os.environ["PATH"])
    done = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(REPO, "inventories", "local", "hosts.yml"), play],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    marker = done.stdout.split("ELAPSED ", 1)[1]
    return float(marker.split('"', 1)[0])


def measure_verify(workdir: str, mib: int) -> Dict[str, Any]:
    path = os.path.join(workdir, "big.bin")
    write_random_file(path, mib)
    small = os.path.join(workdir, "small.bin")
    write_random_file(small, max(1, mib // 4))
    expected = openssl_sha256(path)
    openssl = best_of(3, lambda: openssl_sha256(path))
    ours = best_of(3, lambda: file_digest(path))
    assert file_digest(path)[0] == expected
    key = ed25519.Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    keyring = {"keys": [{"public_key": public}]}
    keyring_path = os.path.join(workdir, "keyring.json")
    with open(keyring_path, "w", encoding="utf-8") as handle:
        json.dump(keyring, handle)
    envelopes = {}
    for name, file_path in (("big", path), ("small", small)):
        digest = file_digest(file_path)[0]
        manifest = {"created": "2026-11-26T00:00:00Z", "source_revision": "0" * 12}
        envelopes[name] = os.path.join(workdir, name + ".intoto.json")
        with open(envelopes[name], "w", encoding="utf-8") as handle:
            json.dump(sign_envelope(build_statement(os.path.basename(file_path), digest, manifest, {}), [key]), handle)
    task = min(task_seconds(workdir, path, envelopes["big"], keyring_path, expected) for _attempt in range(2))
    return {
        "file_mib": mib,
        "openssl_dgst_seconds": round(openssl, 3),
        "digest_seconds": round(ours, 3),
        "digest_throughput_mib_s": round(mib / ours, 1),
        "openssl_throughput_mib_s": round(mib / openssl, 1),
        "digest_vs_openssl_throughput": round(openssl / ours, 3),
        "task_seconds": round(task, 3),
        "task_extra_seconds_over_openssl": round(task - openssl, 3),
        "peak_rss_mib": peak_rss_of_verification(path, envelopes["big"], keyring, expected),
        "peak_rss_mib_quarter_size": peak_rss_of_verification(
            small, envelopes["small"], keyring, file_digest(small)[0]
        ),
    }


def synthetic_tree(root: str, mib: int, seed: int) -> None:
    """Text-like files (compressible, as source and assets are) adding up to about ``mib`` MiB."""
    rng = random.Random(seed)
    written = 0
    number = 0
    while written < mib * 1024 * 1024:
        directory = os.path.join(root, "pkg%02d" % (number % 40))
        os.makedirs(directory, exist_ok=True)
        size = rng.randint(4 * 1024, 512 * 1024)
        words = [rng.choice(WORDS) + str(rng.randint(0, 999)) for _word in range(size // 8)]
        text = " ".join(words)[:size]
        with open(os.path.join(directory, "file%05d.txt" % number), "w", encoding="utf-8") as handle:
            handle.write(text)
        written += len(text)
        number += 1


def minor_release(tree: str, seed: int) -> None:
    """Change about 1% of the files a little and add one, as a minor release does."""
    rng = random.Random(seed)
    files = sorted(os.path.join(d, f) for d, _s, names in os.walk(tree) for f in names)
    for path in rng.sample(files, max(1, len(files) // 100)):
        with open(path, "r+", encoding="utf-8") as handle:
            text = handle.read()
            handle.seek(0)
            cut = rng.randint(0, max(0, len(text) - 200))
            handle.write(text[:cut] + "patched %d " % rng.randint(0, 10**6) + text[cut:])
    with open(os.path.join(tree, "CHANGELOG.txt"), "w", encoding="utf-8") as handle:
        handle.write("minor release: fixes and one new endpoint\n")


def manifest(version: str) -> Dict[str, Any]:
    with open(os.path.join(DEMO_APP, "manifest.json"), encoding="utf-8") as handle:
        document = json.load(handle)
    document["version"] = version
    return document


def build(tree: str, version: str, out: str, fmt: str, template: bool = True) -> str:
    document = manifest(version)
    if not template:
        document.pop("config_templates")
        document["health_checks"] = document["health_checks"][:1]
    with open(out, "wb") as handle:
        write_package(plan_package(tree, document), handle, fmt)
    return out


def zstd_patch_from(base: str, target: str, out: str) -> int:
    subprocess.run(
        ["zstd", "-q", "-f", "-19", "--long", "--patch-from=%s" % base, target, "-o", out],
        check=True,
        capture_output=True,
    )
    return os.path.getsize(out)


def measure_delta(
    workdir: str, name: str, old_tree: str, new_tree: str, template: bool, fmt: str = "tar.zst"
) -> Dict[str, Any]:
    old = build(old_tree, "1.4.0", os.path.join(workdir, "%s-1.4.0.%s" % (name, fmt)), fmt, template)
    new = build(new_tree, "1.5.0", os.path.join(workdir, "%s-1.5.0.%s" % (name, fmt)), fmt, template)
    info = create_delta(old, new, os.path.join(workdir, "%s.delta" % name))
    tars = []
    for path in (old, new):
        tar_path = path[: -len(fmt)] + "tar"
        with open(tar_path, "wb") as handle:
            handle.write(read_tar_stream(path, fmt))
        tars.append(tar_path)
    on_tars = zstd_patch_from(tars[0], tars[1], os.path.join(workdir, "%s.tar.patch" % name))
    on_files = zstd_patch_from(old, new, os.path.join(workdir, "%s.zst.patch" % name))
    return {
        "package_format": fmt,
        "full_bytes": info.target_size,
        "delta_bytes": info.size,
        "delta_method": info.method,
        "delta_vs_full": round(info.size / info.target_size, 4),
        "zstd_patch_from_tar_bytes": on_tars,
        "delta_vs_zstd_patch_from_tar": round(info.size / on_tars, 3),
        "zstd_patch_from_compressed_bytes": on_files,
    }


def reproducible(tree: str, workdir: str, template: bool) -> Dict[str, bool]:
    outcome = {}
    for fmt in ("tar.gz", "tar.zst"):
        first = build(tree, "1.4.0", os.path.join(workdir, "r1." + fmt), fmt, template)
        second = build(tree, "1.4.0", os.path.join(workdir, "r2." + fmt), fmt, template)
        outcome[fmt] = file_digest(first)[0] == file_digest(second)[0]
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify-mib", type=int, default=256, help="size of the verified file (1024 for 1 GiB)")
    parser.add_argument("--tree-mib", type=int, default=4, help="size of the synthetic release tree (200 in the issue)")
    parser.add_argument(
        "--only",
        action="append",
        choices=["verify", "reproducible", "delta"],
        help="run only these parts (repeatable); all by default",
    )
    parser.add_argument(
        "--tree-format",
        choices=["tar.zst", "tar.gz"],
        default="tar.zst",
        help="package format of the synthetic tree's delta pair (tar.gz builds a 200 MiB tree far faster; the "
        "delta works on the tar streams either way, so only full_bytes changes)",
    )
    options = parser.parse_args()
    parts = set(options.only or ["verify", "reproducible", "delta"])
    workdir = tempfile.mkdtemp(prefix="relops-bench-artifacts-")
    try:
        result: Dict[str, Any] = {"benchmark": "artifacts"}
        if "verify" in parts:
            result["verify"] = measure_verify(workdir, options.verify_mib)
        demo_old, demo_new = os.path.join(workdir, "demo-old"), os.path.join(workdir, "demo-new")
        shutil.copytree(os.path.join(DEMO_APP, "app"), demo_old)
        shutil.copytree(os.path.join(DEMO_APP, "app"), demo_new)
        server = os.path.join(demo_new, "src", "demo_app", "server.py")
        with open(server, encoding="utf-8") as handle:
            text = handle.read()
        with open(server, "w", encoding="utf-8") as handle:
            handle.write(text.replace('self.path in ("/", "/health")', 'self.path in ("/", "/health", "/ready")'))
        with open(os.path.join(demo_new, "src", "demo_app", "__init__.py"), "w", encoding="utf-8") as handle:
            handle.write('"""The demo service relops.release deploys."""\n\n__version__ = "1.5.0"\n')
        tree_old, tree_new = os.path.join(workdir, "tree-old"), os.path.join(workdir, "tree-new")
        synthetic_tree(tree_old, options.tree_mib, seed=3)
        shutil.copytree(tree_old, tree_new)
        minor_release(tree_new, seed=4)
        if "reproducible" in parts:
            result["reproducible"] = {
                "demo_app": reproducible(demo_old, workdir, True),
                "synthetic_tree_mib_%d" % options.tree_mib: reproducible(tree_old, workdir, False),
            }
        if "delta" in parts:
            result["delta"] = {
                "demo_app_minor_release": measure_delta(workdir, "demo-app", demo_old, demo_new, True),
                "synthetic_tree_mib_%d" % options.tree_mib: measure_delta(
                    workdir, "tree", tree_old, tree_new, False, options.tree_format
                ),
            }
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
