"""The embedded default: this machine, through pyinfra's local connector (no SSH).

`pyinfra inventory/local.py deploy.py -y` converges inventory/layout.yaml (or
$BOTPOOL_LAYOUT) onto this machine's Docker engine as layout host `local`.
"""

hosts = [("@local", {"botpool_host": "local"})]
