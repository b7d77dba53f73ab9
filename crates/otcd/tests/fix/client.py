"""A stock QuickFIX initiator (PyPI quickfix-ssl, standard FIX44.xml, UseDataDictionary=Y) driven by the Rust
black-box tests in this directory.

Usage: python client.py CONFIG_JSON SCENARIO

CONFIG_JSON: {"port", "key_id", "secret", "algorithm" ("hmac"|"ed25519"), "store", "target", "params": {...}}.
The scenario talks FIX with the desk, prints one JSON object per line for the Rust side (`{"event": ...}`), and
may wait for a line on stdin (`GO`) while the Rust side acts over REST. Any failed expectation exits non-zero
with the reason on stderr. Every message the desk sends is validated by QuickFIX against the standard FIX44.xml:
a message it rejects shows up as a Reject/validation error and fails the scenario.
"""

import base64
import hashlib
import hmac
import json
import os
import queue
import sys
import time
from decimal import Decimal, InvalidOperation

import quickfix as fix

SOH = "\x01"


def emit(**fields):
    print(json.dumps(fields), flush=True)


def fail(reason):
    sys.stderr.write("SCENARIO FAILED: %s\n" % reason)
    sys.stderr.flush()
    os._exit(1)


def wait_go():
    line = sys.stdin.readline()
    if line.strip() != "GO":
        fail("expected GO on stdin, got %r" % line)


class Desk(fix.Application):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.messages = queue.Queue()
        self.logged_on = False
        self.logouts = []
        self.admin_in = []
        self.rejects = []
        self.session_id = None
        self.tamper = config.get("params", {}).get("tamper")

    def onCreate(self, session_id):
        self.session_id = session_id

    def onLogon(self, session_id):
        self.logged_on = True

    def onLogout(self, session_id):
        self.logged_on = False

    def toAdmin(self, message, session_id):
        header = message.getHeader()
        if header.getField(35) == "A":
            if self.tamper == "stale_time":
                header.setField(fix.StringField(52, time.strftime("%Y%m%d-%H:%M:%S.000", time.gmtime(time.time() - 120))))
            parts = [header.getField(tag) for tag in (52, 35, 34, 49, 56)]
            payload = SOH.join(parts).encode()
            signature = sign(self.config, payload)
            if self.tamper == "bad_signature":
                signature = base64.b64encode(b"\x00" * 32).decode()
            message.setField(fix.StringField(95, str(len(signature))))
            message.setField(fix.StringField(96, signature))

    def fromAdmin(self, message, session_id):
        msg_type = message.getHeader().getField(35)
        self.admin_in.append(message.toString().replace(SOH, "|"))
        if msg_type == "5" and message.isSetField(58):
            self.logouts.append(message.getField(58))
        if msg_type == "3":
            self.rejects.append(message.toString().replace(SOH, "|"))

    def toApp(self, message, session_id):
        pass

    def fromApp(self, message, session_id):
        # The message belongs to QuickFIX and dies after this call: keep its fields only.
        self.messages.put(to_dict(message))

    def send(self, msg_type, fields, groups=()):
        message = fix.Message()
        message.getHeader().setField(fix.MsgType(msg_type))
        for tag, value in fields:
            message.setField(fix.StringField(tag, str(value)))
        for count_tag, delimiter, entries in groups:
            for entry in entries:
                group = fix.Group(count_tag, delimiter)
                for tag, value in entry:
                    group.setField(fix.StringField(tag, str(value)))
                message.addGroup(group)
        if not fix.Session.sendToTarget(message, self.session_id):
            fail("sendToTarget refused %s" % msg_type)

    def expect(self, msg_type, timeout=10.0, where=None):
        """The next application message, which must be of msg_type (and match `where`: tag -> value)."""
        deadline = time.time() + timeout
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                fail("no %s within %ss; admin seen: %s" % (msg_type, timeout, self.admin_in[-5:]))
            try:
                fields = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            got = fields[35]
            if got != msg_type:
                fail("expected %s, got %s: %s" % (msg_type, got, fields))
            for tag, value in (where or {}).items():
                if not same(fields.get(tag), value):
                    fail("expected %s=%s in %s: %s" % (tag, value, msg_type, fields))
            return fields

    def expect_any(self, deadline):
        """The next application message, whatever its type (as a dict with its header)."""
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                fail("no message in time; admin seen: %s" % self.admin_in[-5:])
            try:
                return self.messages.get(timeout=remaining)
            except queue.Empty:
                continue

    def quiet(self, seconds):
        """No application message arrives within `seconds`."""
        try:
            fields = self.messages.get(timeout=seconds)
        except queue.Empty:
            return
        fail("unexpected message %s" % fields)


def same(got, wanted):
    """Equal as text, or as decimals (the desk writes quantities at the asset's scale: 0.50000000)."""
    if got == wanted:
        return True
    try:
        return got is not None and Decimal(got) == Decimal(wanted)
    except InvalidOperation:
        return False


def to_dict(message):
    text = message.toString()
    fields = {}
    for part in text.split(SOH):
        if "=" in part:
            tag, value = part.split("=", 1)
            fields.setdefault(int(tag), value)
    return fields


def sign(config, payload):
    if config["algorithm"] == "hmac":
        digest = hmac.new(config["secret"].encode(), payload, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(config["secret"]))
    return base64.b64encode(key.sign(payload)).decode()


def settings_text(config):
    dictionary = os.path.join(sys.prefix, "share", "quickfix", "FIX44.xml")
    if not os.path.exists(dictionary):
        fail("FIX44.xml not found at %s" % dictionary)
    store = config["store"]
    return "\n".join(
        [
            "[DEFAULT]",
            "ConnectionType=initiator",
            "ReconnectInterval=1",
            "FileStorePath=%s" % os.path.join(store, "store"),
            "FileLogPath=%s" % os.path.join(store, "log"),
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            "UseDataDictionary=Y",
            "DataDictionary=%s" % dictionary,
            "HeartBtInt=%s" % config.get("params", {}).get("heartbeat", 30),
            "SocketConnectHost=127.0.0.1",
            "SocketConnectPort=%d" % config["port"],
            "ResetOnLogon=%s" % ("Y" if config.get("params", {}).get("reset") else "N"),
            "[SESSION]",
            "BeginString=FIX.4.4",
            "SenderCompID=%s" % config["key_id"],
            "TargetCompID=%s" % config.get("target", "OTCD"),
            "",
        ]
    )


class Connection:
    def __init__(self, config):
        self.config = config
        os.makedirs(config["store"], exist_ok=True)
        path = os.path.join(config["store"], "session.cfg")
        with open(path, "w") as handle:
            handle.write(settings_text(config))
        self.settings = fix.SessionSettings(path)
        self.app = Desk(config)
        self.initiator = fix.SocketInitiator(
            self.app, fix.FileStoreFactory(self.settings), self.settings, fix.FileLogFactory(self.settings)
        )

    def start(self, expect_logon=True, timeout=10.0):
        self.initiator.start()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.app.logged_on:
                return
            if not expect_logon and (self.app.logouts or self.logged_logout()):
                if not self.app.logouts:
                    self.app.logouts.append(self.logged_logout())
                return
            time.sleep(0.02)
        if expect_logon:
            fail("no logon within %ss; logouts %s; admin %s" % (timeout, self.app.logouts, self.app.admin_in))
        fail("no Logout within %ss" % timeout)

    def stop(self):
        self.initiator.stop()

    def logged_logout(self):
        """The Text of a Logout in QuickFIX's message log (QuickFIX may drop a Logout that ends a refused Logon
        before its application sees it)."""
        import glob

        for path in glob.glob(os.path.join(self.config["store"], "log", "*messages*")):
            with open(path, errors="replace") as handle:
                for line in handle:
                    if SOH + "35=5" + SOH in line and SOH + "58=" in line:
                        return line.split(SOH + "58=", 1)[1].split(SOH, 1)[0]
        return None

    def seq_nums(self):
        session = fix.Session.lookupSession(self.app.session_id)
        return session.getExpectedSenderNum(), session.getExpectedTargetNum()


# --- scenarios -------------------------------------------------------------------------------------------------


def rfq(app, request_id, symbol, side, quantity):
    app.send("R", [(131, request_id)], [(146, 55, [[(55, symbol), (54, side), (38, quantity)]])])


def scenario_logon(config):
    connection = Connection(config)
    connection.start()
    emit(event="logged_on", seq=connection.seq_nums())
    connection.stop()


def scenario_logon_refused(config):
    connection = Connection(config)
    connection.start(expect_logon=False)
    connection.stop()
    emit(event="refused", text=connection.app.logouts[0])


def scenario_rfq_trade(config):
    params = config["params"]
    connection = Connection(config)
    connection.start()
    app = connection.app
    rfq(app, params["rfq_id"], "BTC-USD", "1", "0.5")
    quote = app.expect("S", where={131: params["rfq_id"], 55: "BTC-USD", 54: "1"})
    for tag in (117, 133, 135, 62, 60):
        if tag not in quote:
            fail("Quote lacks %s: %s" % (tag, quote))
    # The same QuoteReqID answers the same quote (client_rfq_id idempotency).
    rfq(app, params["rfq_id"], "BTC-USD", "1", "0.5")
    again = app.expect("S")
    if again[117] != quote[117]:
        fail("a repeated QuoteReqID gave another quote: %s vs %s" % (again[117], quote[117]))
    emit(event="quote", quote_id=quote[117], offer=quote[133], size=quote[135])
    app.send("D", [(11, params["order_id"]), (55, "BTC-USD"), (54, "1"), (60, now()), (38, "0.5"), (40, "D"), (117, quote[117])])
    fill = app.expect("8", where={11: params["order_id"], 150: "F", 39: "2", 31: quote[133], 32: "0.5", 14: "0.5", 151: "0", 6: quote[133]})
    emit(event="filled", order_id=fill[37], exec_id=fill[17], avg_px=fill[6])
    # The used quote again: rejected with the REST code.
    app.send("D", [(11, params["order_id"] + "-2"), (55, "BTC-USD"), (54, "1"), (60, now()), (38, "0.5"), (40, "D"), (117, quote[117])])
    used = app.expect("8", where={150: "8", 39: "8"})
    if not used.get(58, "").startswith("quote_already_used"):
        fail("a used quote: %s" % used)
    # A repeated ClOrdID answers the original order, nothing new.
    app.send("D", [(11, params["order_id"]), (55, "BTC-USD"), (54, "1"), (60, now()), (38, "0.5"), (40, "D"), (117, quote[117])])
    app.expect("8", where={150: "I", 39: "2", 37: fill[37]})
    # A bad RFQ: unknown instrument.
    rfq(app, params["rfq_id"] + "-bad", "NOPE-USD", "1", "1")
    bad = app.expect("AG", where={658: "1"})
    if not bad.get(58, "").startswith("instrument_unknown"):
        fail("AG text %s" % bad)
    # An expired quote.
    rfq(app, params["rfq_id"] + "-late", "BTC-USD", "2", "0.1")
    late = app.expect("S")
    time.sleep(params["quote_validity_ms"] / 1000.0 + 0.3)
    app.send("D", [(11, params["order_id"] + "-late"), (55, "BTC-USD"), (54, "2"), (60, now()), (38, "0.1"), (40, "D"), (117, late[117])])
    expired = app.expect("8", where={150: "8"})
    if not expired.get(58, "").startswith("quote_expired"):
        fail("an expired quote: %s" % expired)
    # Order status of the filled order.
    app.send("H", [(11, params["order_id"]), (55, "BTC-USD"), (54, "1")])
    app.expect("8", where={150: "I", 39: "2", 37: fill[37]})
    emit(event="done", seq=connection.seq_nums(), rejects=app.rejects)
    connection.stop()


def scenario_orders(config):
    connection = Connection(config)
    connection.start()
    app = connection.app
    base = [(55, "BTC-USD"), (60, now())]
    # Market buy with a reference price and a slippage tolerance (custom tag 20001, bps).
    app.send("D", [(11, "mkt-1"), (54, "1"), (38, "0.1"), (40, "1"), (44, "50010.00"), (20001, "10")] + base)
    app.expect("8", where={11: "mkt-1", 150: "F", 39: "2"})
    # Market buy whose reference is far below the firm price: slippage_exceeded.
    app.send("D", [(11, "mkt-2"), (54, "1"), (38, "0.1"), (40, "1"), (44, "40000.00"), (20001, "1")] + base)
    slipped = app.expect("8", where={11: "mkt-2", 150: "8"})
    if not slipped.get(58, "").startswith("slippage_exceeded"):
        fail("slippage: %s" % slipped)
    # IOC that crosses: filled now.
    app.send("D", [(11, "ioc-1"), (54, "1"), (38, "0.1"), (40, "2"), (44, "60000.00"), (59, "3")] + base)
    app.expect("8", where={11: "ioc-1", 150: "F", 39: "2"})
    # FOK that cannot fill: canceled.
    app.send("D", [(11, "fok-1"), (54, "1"), (38, "0.1"), (40, "2"), (44, "100.00"), (59, "4")] + base)
    app.expect("8", where={11: "fok-1", 150: "4", 39: "4"})
    # GTC resting, then canceled.
    app.send("D", [(11, "gtc-1"), (54, "1"), (38, "0.1"), (40, "2"), (44, "100.00"), (59, "1")] + base)
    app.expect("8", where={11: "gtc-1", 150: "0", 39: "0", 151: "0.1"})
    app.send("F", [(11, "cxl-1"), (41, "gtc-1"), (54, "1"), (55, "BTC-USD"), (38, "0.1"), (60, now())])
    # The canceled report names the cancel request (ClOrdID) and the order it cancelled (OrigClOrdID).
    app.expect("8", where={11: "cxl-1", 41: "gtc-1", 150: "4", 39: "4"})
    # Cancel of a finished order: OrderCancelReject.
    app.send("F", [(11, "cxl-2"), (41, "gtc-1"), (54, "1"), (55, "BTC-USD"), (38, "0.1"), (60, now())])
    app.expect("9", where={41: "gtc-1", 434: "1"})
    app.send("F", [(11, "cxl-3"), (41, "nope"), (54, "1"), (55, "BTC-USD"), (38, "0.1"), (60, now())])
    app.expect("9", where={41: "nope", 102: "1"})
    # GTD with ExpireTime: rests, then expires.
    expire = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(time.time() + 2))
    app.send("D", [(11, "gtd-1"), (54, "1"), (38, "0.1"), (40, "2"), (44, "100.00"), (59, "6"), (126, expire)] + base)
    app.expect("8", where={11: "gtd-1", 150: "0"})
    app.expect("8", where={11: "gtd-1", 150: "C", 39: "C"}, timeout=15)
    # GTC filled later by a price move the Rust side makes over REST.
    app.send("D", [(11, "gtc-2"), (54, "1"), (38, "0.1"), (40, "2"), (44, "49000.00"), (59, "1")] + base)
    app.expect("8", where={11: "gtc-2", 150: "0"})
    emit(event="resting")
    wait_go()
    app.expect("8", where={11: "gtc-2", 150: "F", 39: "2"}, timeout=15)
    emit(event="done", rejects=app.rejects)
    connection.stop()


def scenario_reconnect(config):
    """Phase 1 (params.phase == 1): rest a GTC order and leave. Phase 2: log on again with the same store;
    the fill that happened while away arrives; a repeated ClOrdID fills nothing twice."""
    params = config["params"]
    connection = Connection(config)
    connection.start()
    app = connection.app
    if params["phase"] == 1:
        app.send("D", [(11, "away-1"), (55, "BTC-USD"), (54, "1"), (38, "0.2"), (40, "2"), (44, "49000.00"), (59, "1"), (60, now())])
        app.expect("8", where={11: "away-1", 150: "0"})
        emit(event="resting", seq=connection.seq_nums())
    else:
        app.expect("8", where={11: "away-1", 150: "F", 39: "2"}, timeout=15)
        app.send("D", [(11, "away-1"), (55, "BTC-USD"), (54, "1"), (38, "0.2"), (40, "2"), (44, "49000.00"), (59, "1"), (60, now())])
        app.expect("8", where={11: "away-1", 150: "I", 39: "2"})
        app.send("H", [(11, "away-1"), (55, "BTC-USD"), (54, "1")])
        app.expect("8", where={150: "I", 39: "2", 14: "0.2"})
        emit(event="done", seq=connection.seq_nums(), rejects=app.rejects)
    connection.stop()


def scenario_trade_and_leave(config):
    """Trade at market, note the sequence numbers, leave (for the kill -9 test)."""
    params = config["params"]
    connection = Connection(config)
    connection.start()
    app = connection.app
    app.send("D", [(11, params["order_id"]), (55, "BTC-USD"), (54, "1"), (38, "0.1"), (40, "1"), (60, now())])
    fill = app.expect("8", where={150: "F", 39: "2"})
    app.send("H", [(11, params["order_id"]), (55, "BTC-USD"), (54, "1")])
    app.expect("8", where={150: "I", 39: "2"})
    emit(event="done", order_id=fill[37], seq=connection.seq_nums(), rejects=app.rejects)
    connection.stop()


def scenario_market_data(config):
    connection = Connection(config)
    connection.start()
    app = connection.app
    app.send("V", [(262, "md-1"), (263, "1"), (264, "0"), (271, "0.5")], [(267, 269, [[(269, "0")], [(269, "1")]]), (146, 55, [[(55, "BTC-USD")]])])
    snapshot = app.expect("W", where={262: "md-1", 55: "BTC-USD", 269: "0"})
    emit(event="snapshot", bid=snapshot[270], size=snapshot[271], firm=snapshot.get(276) != "I")
    wait_go()
    update = app.expect("X", where={262: "md-1", 279: "1"}, timeout=10)
    emit(event="update", bid=update[270])
    app.send("V", [(262, "md-1"), (263, "2"), (264, "0")], [(267, 269, [[(269, "0")]]), (146, 55, [[(55, "BTC-USD")]])])
    app.send("V", [(262, "md-2"), (263, "1"), (264, "0")], [(267, 269, [[(269, "0")]]), (146, 55, [[(55, "NOPE-USD")]])])
    deadline = time.time() + 10
    while True:
        message = app.expect_any(deadline)
        if message[35] == "Y":
            if message[262] != "md-2" or not message.get(58, "").startswith("instrument_unknown"):
                fail("Y: %s" % message)
            break
        if message[35] != "X" or message[262] != "md-1":
            fail("unexpected %s" % message)
    emit(event="done", rejects=app.rejects)
    connection.stop()


def scenario_drop_copy(config):
    """A read-only key: no trading, and every ExecutionReport of its client."""
    connection = Connection(config)
    connection.start()
    app = connection.app
    app.send("D", [(11, "ro-1"), (55, "BTC-USD"), (54, "1"), (38, "0.1"), (40, "1"), (60, now())])
    app.expect("j", where={380: "6"})
    emit(event="ready")
    fill = app.expect("8", where={11: "rest-1", 150: "F", 39: "2"}, timeout=15)
    emit(event="done", order_id=fill[37], rejects=app.rejects)
    connection.stop()


def now():
    return time.strftime("%Y%m%d-%H:%M:%S.000", time.gmtime())


def main():
    config = json.loads(sys.argv[1])
    scenario = globals().get("scenario_" + sys.argv[2])
    if scenario is None:
        fail("no scenario %s" % sys.argv[2])
    scenario(config)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
