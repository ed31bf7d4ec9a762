"""Pool images are named by their inputs; build-time settings never reach the final image."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from botpool.core.image import (
    BUILD_TIME_DIR,
    CA_BUNDLE,
    PIP_CONF,
    UV_CONF,
    UV_VERSION,
    DockerState,
    base_build_command,
    image_spec,
    inputs_hash,
    parse_docker_state,
    pool_images,
)
from botpool.core.validate import load_layout

OFFICIAL = "freqtradeorg/freqtrade:{version}"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def stages(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, split per stage (each starts with FROM)."""
    lines = [ln for ln in dockerfile.splitlines() if ln.strip() and not ln.startswith("#")]
    text = "\n".join(lines)
    return ["FROM" + part for part in re.split(r"^FROM", text, flags=re.M)[1:]]


def test_same_inputs_give_the_same_tag_and_a_new_version_a_new_one():
    first, again = image_spec("2026.9"), image_spec("2026.9")
    assert first.tag == again.tag and first.inputs_hash == again.inputs_hash
    assert re.fullmatch(r"botpool/pool:2026\.9-[0-9a-f]{12}", first.tag)
    assert first.tag.endswith(first.inputs_hash[:12])
    newer = image_spec("2026.10")
    assert newer.tag != first.tag and newer.tag.startswith("botpool/pool:2026.10-")


def test_rewording_a_dockerfile_comment_keeps_the_tag():
    spec = image_spec("2026.9")
    reworded = {**spec.files, "Dockerfile": spec.dockerfile.replace("# ", "#  reworded ")}
    assert reworded["Dockerfile"] != spec.dockerfile
    assert inputs_hash(reworded) == spec.inputs_hash
    changed = {**spec.files, "Dockerfile": spec.dockerfile.replace("USER ftuser", "USER root")}
    assert inputs_hash(changed) != spec.inputs_hash


def test_base_and_extra_packages_change_the_tag():
    local = image_spec("2026.9")
    assert image_spec("2026.9", OFFICIAL).tag != local.tag
    extra = image_spec("2026.9", pip_packages=["scikit-learn==1.5.2"])
    assert extra.tag != local.tag
    assert "pip install --no-cache-dir scikit-learn==1.5.2" in extra.dockerfile


def test_ca_bundle_and_pip_index_do_not_change_the_tag():
    plain = image_spec("2026.9")
    proxied = image_spec("2026.9", ca_bundle=PEM, pip_index_url="https://pypi.example/simple")
    assert proxied.tag == plain.tag and proxied.dockerfile == plain.dockerfile
    assert proxied.files[CA_BUNDLE] == PEM
    conf = proxied.files[PIP_CONF]
    assert "index-url = https://pypi.example/simple" in conf
    assert f"cert = {BUILD_TIME_DIR}/ca.pem" in conf
    assert "index-url" not in plain.files[PIP_CONF] and plain.files[CA_BUNDLE] == ""
    # uv (which installs freqtrade) uses the same index, from TOML, and the bundle when given
    assert tomllib.loads(proxied.files[UV_CONF]) == {"index-url": "https://pypi.example/simple"}
    assert tomllib.loads(plain.files[UV_CONF]) == {}
    ca = f"{BUILD_TIME_DIR}/ca.pem"
    assert f"if [ -s {ca} ]; then export SSL_CERT_FILE={ca}; fi" in plain.dockerfile


@pytest.mark.parametrize("base", ["local", OFFICIAL])
def test_build_time_settings_stay_in_the_builder_stage(base):
    spec = image_spec("2026.9", base, PEM, "https://pypi.example/simple", ["requests-toolbelt"])
    *builders, final = stages(spec.dockerfile)
    assert any(BUILD_TIME_DIR in stage and "PIP_CONFIG_FILE" in stage for stage in builders)
    # the final stage copies installed packages from the builder, nothing else
    assert BUILD_TIME_DIR not in final and "build-time" not in final
    assert "PIP_" not in final and "UV_" not in final and "SSL_CERT_FILE" not in final
    copies = [ln for ln in final.splitlines() if ln.startswith("COPY")]
    assert copies and all(ln.startswith("COPY --from=builder /opt/") for ln in copies)
    # and no secret ever sits in the Dockerfile itself, which is what `docker history` shows
    assert "pypi.example" not in spec.dockerfile and "MIIB" not in spec.dockerfile


@pytest.mark.parametrize("base", ["local", OFFICIAL])
def test_the_final_stage_keeps_the_image_contract(base):
    final = stages(image_spec("2026.9", base).dockerfile)[-1]
    assert "USER ftuser" in final and "ENTRYPOINT []" in final
    assert final.rstrip().splitlines()[-3:] == [
        "WORKDIR /freqtrade",
        "ENTRYPOINT []",
        'CMD ["supervisord", "--version"]',
    ]


def test_local_base_installs_freqtrade_and_supervisor_in_one_virtualenv():
    spec = image_spec("2026.9")
    assert spec.base == "local" and spec.base_tag == "botpool/debian:trixie"
    runtime, builder, final = stages(spec.dockerfile)
    assert runtime.startswith("FROM botpool/debian:trixie AS runtime")
    assert "useradd --uid 1000" in runtime and "ENV PATH=/opt/freqtrade/bin:" in runtime
    # pip installs only uv, beside the virtualenv; uv installs both, bytecode compiled as pip would
    assert f"/opt/uv/bin/pip install --no-cache-dir uv=={UV_VERSION}" in builder
    install = " ".join(builder.split("/opt/uv/bin/uv pip install ")[1].split("\\\n"))
    assert install.split() == [
        *("--no-cache", "--compile-bytecode", "--python", "/opt/freqtrade/bin/python"),
        *("freqtrade==2026.9", "supervisor==4.3.0"),
    ]
    assert f"ENV UV_CONFIG_FILE={BUILD_TIME_DIR}/uv.toml" in builder
    assert final.startswith("FROM runtime\nCOPY --from=builder /opt/freqtrade /opt/freqtrade\n")
    assert "/opt/uv" not in final


def test_extra_packages_from_the_local_base_are_added_to_the_image_without_them():
    """pip adds only the packages to a built freqtrade (seconds, not a whole install), and the
    final image is a whole copy of that virtualenv over the same runtime stage (no file pip
    removed from the parent is left behind, as a COPY onto the parent would leave it)."""
    plain = image_spec("2026.9", ca_bundle=PEM, frequi=True)
    extra = image_spec("2026.9", ca_bundle=PEM, pip_packages=["wheel"], frequi=True)
    assert extra.parent == plain and plain.parent is None
    assert [s.tag for s in extra.build_order] == [plain.tag, extra.tag]
    runtime, builder, final = stages(extra.dockerfile)
    assert runtime == stages(plain.dockerfile)[0]  # the same layers: Docker's cache
    assert builder.startswith(f"FROM {plain.tag} AS builder\nUSER root\n")
    assert "LABEL botpool.stage=builder" in builder  # pruned after the build
    assert f"COPY build-time/ {BUILD_TIME_DIR}/" in builder  # pip's settings, here only
    assert "RUN /opt/freqtrade/bin/pip install --no-cache-dir wheel" in builder
    assert "freqtrade==" not in builder and "install-ui" not in builder  # (the parent's)
    assert final.startswith("FROM runtime\nCOPY --from=builder /opt/freqtrade /opt/freqtrade\n")
    # another list of packages: another image, the same parent
    other = image_spec("2026.9", ca_bundle=PEM, pip_packages=["wheel", "pytz"], frequi=True)
    assert other.tag != extra.tag and other.parent == plain
    # the official base installs extra packages beside its own: no parent
    assert image_spec("2026.9", OFFICIAL, pip_packages=["wheel"]).parent is None


def test_official_base_adds_supervisor_beside_freqtrade():
    spec = image_spec("2026.9", OFFICIAL)
    assert spec.base == "freqtradeorg/freqtrade:2026.9" and spec.base_tag is None
    builder, final = stages(spec.dockerfile)
    assert builder.startswith("FROM freqtradeorg/freqtrade:2026.9 AS builder")
    assert "supervisor==4.3.0" in builder and "freqtrade==" not in builder
    assert final.startswith("FROM freqtradeorg/freqtrade:2026.9\n")
    assert "/usr/local/bin/" in final and "botpool-ftuser.pth" in final


def test_labels_come_from_the_build_command_and_mark_no_container_as_managed():
    spec = image_spec("2026.9")
    assert spec.labels["botpool.image"] == "pool"
    assert spec.labels["botpool.inputs-hash"] == spec.inputs_hash
    assert set(spec.labels) == {
        "botpool.image",
        "botpool.freqtrade",
        "botpool.inputs-hash",
        "botpool.version",
    }
    command = spec.build_command("/var/tmp/botpool-build/x")
    assert f"--tag {spec.tag}" in command and "--label botpool.image=pool" in command
    assert "docker image prune --force --filter label=botpool.stage=builder" in command
    assert "LABEL" not in stages(spec.dockerfile)[-1]  # containers inherit image labels


FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "$CALLS"
case "$1" in build) echo "pip: could not reach the index"; exit "$BUILD_STATUS";; esac
"""


@pytest.mark.parametrize("build_status", [0, 1])
def test_a_build_always_removes_its_context_and_builder_stage(tmp_path, build_status):
    """Where the build-time CA bundle and pip settings were; a failure shows the log."""
    bin_dir, context = tmp_path / "bin", tmp_path / "context"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    spec = image_spec("2026.9", ca_bundle=PEM)
    for path, text in spec.files.items():
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        (context / path).write_text(text)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CALLS": str(tmp_path / "calls"),
        "BUILD_STATUS": str(build_status),
    }
    script = "set -e\n" + spec.build_command(str(context))  # as tasks/image.py runs it
    proc = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    calls = (tmp_path / "calls").read_text().splitlines()
    assert [c.split()[0:2] for c in calls] == [["build", "--force-rm"], ["image", "prune"]]
    assert not context.exists()
    if build_status:
        assert proc.returncode == 1 and "could not reach the index" in proc.stderr
        assert (tmp_path / "context.log").exists()  # kept, and named in the error
    else:
        assert proc.returncode == 0 and not (tmp_path / "context.log").exists()


def test_archive_name_is_a_plain_file_name():
    spec = image_spec("2026.9")
    assert spec.archive_name == spec.tag.replace("/", "_").replace(":", "_") + ".tar.gz"
    assert "/" not in spec.archive_name
    assert "docker save" in spec.save_command("/x/a.tar.gz") and "gzip" in spec.save_command("/x")


def test_base_build_script_runs_debootstrap_minbase_and_imports_a_labelled_base(tmp_path):
    """The script itself runs, with stand-ins for debootstrap and docker on PATH (doubles for
    what needs root and the network) that record what they were asked."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "debootstrap").write_text(
        '#!/bin/sh\necho "$@" > "$LOG.debootstrap"; mkdir -p "$3/etc"; echo x > "$3/etc/os"\n'
    )
    (bin_ / "docker").write_text(
        '#!/bin/sh\nfor a in "$@"; do echo "$a"; done > "$LOG.docker"; tar -t >> "$LOG.docker"\n'
    )
    for tool in bin_.iterdir():
        tool.chmod(0o755)
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "LOG": str(tmp_path / "log")}
    proc = subprocess.run(
        ["sh", "-c", base_build_command()], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    debootstrap = (tmp_path / "log.debootstrap").read_text().split()
    assert debootstrap[:2] == ["--variant=minbase", "trixie"]
    assert debootstrap[3] == "http://deb.debian.org/debian"
    docker = (tmp_path / "log.docker").read_text().splitlines()
    assert docker[0] == "import" and "LABEL botpool.image=base" in docker
    assert any(a.startswith("ENV PATH=") for a in docker)
    assert docker[docker.index("-") + 1] == "botpool/debian:trixie" and "./etc/os" in docker
    assert not Path(debootstrap[2]).exists()  # the rootfs is removed


def test_base_build_script_fails_with_the_end_of_debootstraps_log(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "debootstrap").write_text("#!/bin/sh\necho 'E: mirror unreachable'\nexit 1\n")
    (bin_ / "debootstrap").chmod(0o755)
    proc = subprocess.run(
        ["sh", "-c", base_build_command()],
        env={"PATH": f"{bin_}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1 and "E: mirror unreachable" in proc.stderr


def test_docker_state_reads_engine_and_images():
    running = parse_docker_state(
        ["installed", "engine 20.10.24+dfsg1", "image botpool/pool:2026.9-abc", "image x:y", ""]
    )
    assert running == DockerState(
        True, "20.10.24+dfsg1", frozenset({"botpool/pool:2026.9-abc", "x:y"})
    )
    assert parse_docker_state(["installed"]) == DockerState(True, None)
    assert parse_docker_state([]) == DockerState(False, None)


def test_pool_images_read_the_ca_bundle_beside_the_layout(write_layout, layout_dir):
    (layout_dir / "proxy-ca.pem").write_text(PEM)
    path = write_layout(
        """
        defaults:
          image: {ca_bundle: proxy-ca.pem, pip_index_url: "https://pypi.example/simple"}
          bot: {exchange: sandbox, strategy: SampleStrategy, pairs: [BTC/USDT], stake_amount: 10,
                dry_run_wallet: 1000}
        users:
          alice:
            bots: [{name: one}]
          bob:
            freqtrade_version: "2026.10"
            bots: [{name: two}]
        """
    )
    images = pool_images(load_layout(path))
    assert sorted(images) == ["2026.10", "2026.9"]
    assert images["2026.9"].tag == image_spec("2026.9").tag
    assert all(spec.files[CA_BUNDLE] == PEM for spec in images.values())


def test_frequi_is_installed_in_the_builder_stage_of_a_local_image_only_when_asked():
    plain, with_ui = image_spec("2026.9"), image_spec("2026.9", frequi=True)
    assert "install-ui" not in plain.dockerfile
    assert image_spec("2026.9", frequi=False).tag == plain.tag  # unchanged images stay
    runtime, builder, final = stages(with_ui.dockerfile)
    assert "/opt/freqtrade/bin/freqtrade install-ui" in builder
    assert "install-ui" not in runtime + final  # the final stage copies the virtualenv
    assert "COPY --from=builder /opt/freqtrade /opt/freqtrade" in final
    assert f"REQUESTS_CA_BUNDLE={BUILD_TIME_DIR}/ca.pem" in builder  # through a proxy's CA
    assert with_ui.tag != plain.tag
    # the official image ships FreqUI: nothing to add (validation refuses the setting there)
    assert image_spec("2026.9", OFFICIAL, frequi=True).tag == image_spec("2026.9", OFFICIAL).tag


def test_frequi_with_the_official_base_is_refused(write_layout):
    from botpool.core.source import LayoutError

    from .conftest import MINIMAL

    text = MINIMAL.replace("defaults:\n", "defaults:\n  image: {base: 'x/y:1', frequi: true}\n")
    with pytest.raises(LayoutError, match="the official freqtrade image ships FreqUI already"):
        load_layout(write_layout(text))
    text = MINIMAL.replace("defaults:\n", "defaults:\n  image: {frequi: true}\n")
    assert load_layout(write_layout(text)).image.frequi is True
