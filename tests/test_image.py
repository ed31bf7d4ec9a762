"""Pool images are named by their inputs: same inputs, same tag; anything else, a new one."""

from __future__ import annotations

from botpool.image import image_spec
from botpool.layout import ImageSettings

LOCAL = ImageSettings("local", None, None)


def test_same_inputs_same_tag_and_a_new_version_a_new_tag():
    assert image_spec(LOCAL, "2026.9").tag == image_spec(LOCAL, "2026.9").tag
    assert image_spec(LOCAL, "2026.9").tag.startswith("botpool/pool:2026.9-")
    assert image_spec(LOCAL, "2026.10").tag != image_spec(LOCAL, "2026.9").tag


def test_extra_packages_change_the_image():
    extra = ImageSettings("local", None, None, ("scikit-learn==1.5.2",))
    spec = image_spec(extra, "2026.9")
    assert spec.tag != image_spec(LOCAL, "2026.9").tag
    assert "RUN pipx scikit-learn==1.5.2" in spec.dockerfile


def test_build_time_settings_do_not_change_the_image_or_stay_in_it():
    proxied = ImageSettings("local", "unused-path", "https://pypi.example/simple")
    spec = image_spec(proxied, "2026.9", ca_bundle="-----BEGIN CERTIFICATE-----\n")
    assert spec.tag == image_spec(LOCAL, "2026.9").tag
    assert spec.context()["extra-ca.crt"].startswith("-----BEGIN")
    assert "rm -f /tmp/extra-ca.crt" in spec.dockerfile and "ENV PIP_" not in spec.dockerfile
    assert spec.build_args() == ["--build-arg", "PIP_INDEX_URL=https://pypi.example/simple"]


def test_local_and_official_bases():
    local = image_spec(LOCAL, "2026.9")
    assert local.base_tag == "botpool/debian:bookworm"
    assert "FROM botpool/debian:bookworm" in local.dockerfile
    assert "freqtrade==2026.9 supervisor==4.3.0" in local.dockerfile
    official = image_spec(ImageSettings("freqtradeorg/freqtrade:{version}", None, None), "2026.9")
    assert official.base_tag is None
    assert "FROM freqtradeorg/freqtrade:2026.9" in official.dockerfile
    assert "pipx supervisor==4.3.0" in official.dockerfile
    for spec in (local, official):
        assert (
            "ENTRYPOINT []" in spec.dockerfile
            and "botpool.managed" not in spec.dockerfile.split("LABEL")[-1]
        )
