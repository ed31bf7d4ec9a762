"""Reading live hosts from the controller: SSH (testinfra, host keys verified) or @local,
every command bounded. drift, the checks' probe, status and the converge lock live here;
they only read, except the lock."""


class InventoryError(Exception):
    """An inventory that cannot be read, or lists no hosts (nothing read must never pass)."""
