"""Pool images on the host: built there when their tag is missing, never otherwise.

With `image.base: local` (no registry needed) a Debian base is made first with debootstrap
and `docker import`; otherwise the Dockerfile starts FROM the configured image.
"""

from pyinfra import host
from pyinfra.operations import apt, server

from botpool.image import base_build_command
from botpool.reconcile import Upload
from botpool.render import Artifact
from tasks import context, operations

ctx = context.for_host(host)
needed = {pool.freqtrade_version for pool in ctx.host.pools}
if ctx.host.exchanges:
    needed.add(ctx.plan.layout.freqtrade_version)
missing = [ctx.images[v] for v in sorted(needed) if ctx.images[v].tag not in ctx.snapshot.images]
bases = sorted({s.base_tag for s in missing if s.base_tag} - ctx.snapshot.images)

if bases:
    apt.packages(
        name="Install debootstrap (to build the local Debian base image)",
        packages=["debootstrap"],
        update=True,
        no_recommends=True,
    )
for base in bases:
    server.shell(
        name=f"Build the base image {base} from Debian packages",
        commands=[base_build_command(base)],
    )
for spec in missing:
    directory = f"build/{spec.tag.split(':')[1]}"
    operations.upload(
        name=f"Upload the build context of {spec.tag}",
        root=ctx.root,
        uploads=[
            Upload(Artifact(name, text), f"{directory}/{name}")
            for name, text in spec.context().items()
        ],
    )
    build = [
        "docker",
        "build",
        "--quiet",
        "--tag",
        spec.tag,
        *spec.build_args(),
        f"{ctx.root}/{directory}",
    ]
    server.shell(
        name=f"Build the pool image {spec.tag} (freqtrade {spec.freqtrade_version})",
        commands=[operations.q(*build) + " >/dev/null"],
    )
