"""Issue 17's server side (webhooks, stream resume) lands on another branch. Until it is merged the desk
answers 404 for /v1/webhooks, and the tests that need it skip, saying so."""

from __future__ import annotations

import otcd_client as otc


def webhooks_missing(admin: otc.Client) -> bool:
    try:
        admin.webhooks()
    except otc.NotFound:
        return True
    return False


SKIP_REASON = ("the desk answers 404 for /v1/webhooks: issue 17's server side (webhooks, stream seq/resume_from) "
               "is not merged yet")
