"""Test harness: images built once on this machine, and disposable SSH "VPS" hosts.

- images.py: the local Debian base, pool images and their saved archives, built with
  botpool.core.image's own commands and cached by tag;
- vps.py: bare Debian containers with sshd on 127.0.0.1, and the `ssh_key` fixture.
"""

import pytest

# vps.py is loaded as a pytest plugin (fixtures) by modules that also import from it
pytest.register_assert_rewrite("tests.harness.vps", "tests.harness.images")
