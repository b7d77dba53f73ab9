"""Issue 17's server side (webhooks, stream resume) lands on another branch. Until it is merged the desk
answers 404 for /v1/webhooks, and the tests that need it skip, saying so."""

from __future__ import annotations

import asyncio

import otcd_client as otc


def webhooks_missing(admin: otc.Client) -> bool:
    try:
        admin.webhooks()
    except otc.NotFound:
        return True
    return False


SKIP_REASON = ("the desk answers 404 for /v1/webhooks: issue 17's server side (webhooks, stream seq/resume_from) "
               "is not merged yet")


def stream_sends_seq(client: otc.Client) -> bool:
    """Whether the desk's `subscribed` ack carries `seq` (issue 17's stream resume)."""

    async def probe() -> bool:
        async with client.stream(reconnect=False) as stream:
            await stream.subscribe("orders")
            ack = await stream.next(10)
            return ack.type == "subscribed" and isinstance(ack.raw.get("seq"), int)

    return asyncio.run(probe())


RESUME_SKIP_REASON = ("the desk answers 404 for /v1/webhooks and its stream sends no seq: issue 17's server side "
                      "is not merged yet")
