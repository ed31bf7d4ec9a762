"""A pyinfra deploy of the Docker engine and one pool image, nothing else (harness tests).

It hands the ImageSpec to tasks/image.py through `host.data.botpool_image`, the way any
deploy file does. Host data read here: `botpool_test_image_base` ("local", the default, or
an image reference to start FROM).

    pyinfra INVENTORY tests/harness/engine_image_deploy.py -y     (from the repository root)
"""

from pyinfra import host, local

from tests.harness.images import pool_spec

host.data.botpool_image = pool_spec(host.data.get("botpool_test_image_base") or "local")
local.include("tasks/engine.py")
local.include("tasks/image.py")
