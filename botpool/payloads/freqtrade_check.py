"""freqtrade's own judgement of bot configs: on the controller, or inside a pool image.

The controller imports `refusal` when freqtrade is installed there. Otherwise the converge
runs this file with the pool image's python3 (`python3 -c <this file>`, in a container
with no network and a read-only file system): it reads {bot key: config} as JSON on stdin
and prints one JSON line per refused config, then a last line saying how many it checked
(so a run cut short is never taken for "all valid"). Only freqtrade and the standard
library are imported, and freqtrade only inside `refusal`: this module loads anywhere.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

MARK = "botpool-freqtrade-check"  # every line this prints starts a JSON object with it
MESSAGE_MAX = 500


def refusal(config: dict[str, Any]) -> tuple[list[str | int], str] | None:
    """freqtrade's reason to refuse this config: (the setting's key path, why), or None.

    The key path is freqtrade's (`["order_types", "entry"]`), empty when freqtrade names no
    single setting (a consistency check across several).
    """
    from freqtrade.configuration import config_validation
    from freqtrade.configuration.deprecated_settings import process_temporary_deprecated_settings
    from freqtrade.exceptions import ConfigurationError, OperationalException
    from jsonschema import ValidationError

    quiet = logging.root.manager.disable
    logging.disable(logging.CRITICAL)  # freqtrade logs what it raises, schema and all
    try:
        config_validation.validate_config_schema(config)
        process_temporary_deprecated_settings(config)
        config_validation.validate_config_consistency(config)
    except ValidationError as exc:
        return list(exc.absolute_path), exc.message[:MESSAGE_MAX]
    except (ConfigurationError, OperationalException) as exc:
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        return _schema_path(config_validation, config, lines[0]), lines[0][:MESSAGE_MAX]
    finally:
        logging.disable(quiet)
    return None


def _schema_path(config_validation: Any, config: dict[str, Any], message: str) -> list[str | int]:
    """Where in the config freqtrade's schema error is: freqtrade keeps only its message, so
    the schema's errors are listed again and the one with that message gives its path ([]:
    not a schema error, or a freqtrade that validates differently)."""
    validator = getattr(config_validation, "FreqtradeValidator", None)
    schema = getattr(config_validation, "CONF_SCHEMA", None)
    if validator is None or schema is None:
        return []
    for error in validator(schema).iter_errors(config):
        if error.message == message:
            return list(error.absolute_path)
    return []


def main() -> None:
    configs = json.load(sys.stdin)
    for key, config in configs.items():
        found = refusal(config)
        if found:
            path, message = found
            print(json.dumps({MARK: "refused", "bot": key, "path": path, "message": message}))
    print(json.dumps({MARK: "checked", "count": len(configs)}))


if __name__ == "__main__":
    main()
