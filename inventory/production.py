"""An example inventory for real hosts over SSH; copy it and fill in your own.

Each entry is (SSH address, host data). `botpool_host` names the host in the layout's
`hosts:` section (default: the address itself); `botpool_layout` is the layout file.
Log in as root, or as a user with sudo and `_sudo: True`. `botpool_image_build` is `host`
(build the pool image on the host, the default) or `controller` (build here, upload it).
See the README, "Production hosts", for every botpool host data key.

    pyinfra inventory/production.py deploy.py             # converge every host in parallel
    pytest checks/ --inventory inventory/production.py    # verify them
"""

LAYOUT = "inventory/production.yaml"

hosts = [
    ("vps1.example.com", {"botpool_host": "vps1", "botpool_layout": LAYOUT, "ssh_user": "root"}),
    (
        "vps2.example.com",
        {
            "botpool_host": "vps2",
            "botpool_layout": LAYOUT,
            "ssh_user": "deploy",
            "_sudo": True,
            "botpool_image_build": "controller",
        },
    ),
]
