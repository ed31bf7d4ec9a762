"""The pure core: a layout file -> a validated Layout -> a Plan -> rendered files and container
specs -> the changes a host needs, given what it shows. No host access, no pyinfra: everything
here is a function of its inputs (files it is told to read, and the secret store)."""
