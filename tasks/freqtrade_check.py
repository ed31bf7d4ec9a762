"""freqtrade's own checks of every bot config this converge would start anew, on the host,
inside the pool image the bot will run, before any pool or bot is touched.

Only when the controller has no freqtrade: otherwise tasks/context.py ran the same checks
there, for every bot, before the first task, or found each config accepted by the same
freqtrade before (botpool.core.freqtrade_validation). One
throwaway container per pool image, for all its bots; a refused setting is reported as the
layout's FILE:LINE and key, and the host's converge stops here (the image may have been
built; no container, file or program of it changed).
"""

from functools import partial

from pyinfra import host

from botpool.core import freqtrade_validation as validation
from tasks import context, operations

if not context.judged_here(host):
    ctx = context.for_host(host)
    for image, bots in sorted(validation.bots_to_check(ctx.desired, ctx.changes).items()):
        operations.freqtrade_check(
            name=f"freqtrade checks the config of {len(bots)} bot(s) in {image}",
            command=validation.check_command(image),
            configs=validation.check_input(ctx.plan, bots),
            verdict=partial(validation.read_check_output, ctx.plan, bots, image),
            timeout=validation.CHECK_SECONDS + 60,
        )
