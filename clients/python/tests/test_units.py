"""Offline checks: signing against docs/api.md's worked examples, Ed25519 signatures, decimal inputs."""

import base64
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import otcd_client as otc
from otcd_client._core import decimal_text, new_client_id


def test_hmac_matches_the_worked_examples():
    signer = otc.Signer("k", secret="example-secret-not-real")
    assert signer.sign(otc.signing_payload(1767225600000, "GET", "/v1/balances", "", None)) == \
        "88e45eb1fbd08bedbc4835f2ab4e980de07616c7d72a9e4ffb5a49e7a15e8140"
    body = '{"instrument":"BTC-USD","side":"buy","quantity":"0.5"}'
    assert signer.sign(otc.signing_payload(1767225600000, "POST", "/v1/rfq", body, None)) == \
        "1415e08dd7c3b75e3492e828613a06883a2681c4e3eddf71bf2e3f2ac3b541a0"


def test_headers_carry_a_fresh_nonce_in_the_fifth_line():
    signer = otc.Signer("k", secret="s")
    first, second = signer.headers("GET", "/v1/balances", "", 1), signer.headers("GET", "/v1/balances", "", 1)
    assert first["OTC-NONCE"] != second["OTC-NONCE"] and first["OTC-SIGNATURE"] != second["OTC-SIGNATURE"]
    assert first["OTC-SIGNATURE"] == signer.sign(b"1\nGET\n/v1/balances\n\n" + first["OTC-NONCE"].encode())


def test_ed25519_signatures_verify_with_the_registered_public_key():
    private, public = otc.generate_ed25519_key()
    signer = otc.Signer("k", private_key=private)
    payload = otc.signing_payload(5, "POST", "/v1/orders", "{}", "n1")
    signature = base64.b64decode(signer.sign(payload))
    Ed25519PublicKey.from_public_bytes(base64.b64decode(public)).verify(signature, payload)  # raises if wrong
    with pytest.raises(ValueError):
        otc.Signer("k", private_key=b"short")
    with pytest.raises(ValueError):
        otc.Signer("k", secret="s", private_key=private)


def test_decimal_inputs():
    assert decimal_text(Decimal("0.50"), "q") == "0.50"
    assert decimal_text("1e3", "q") == "1000"
    assert decimal_text(7, "q") == "7"
    for bad in (0.5, True, Decimal("NaN"), "Infinity", "abc", None):
        with pytest.raises((TypeError, ValueError)):
            decimal_text(bad, "q")
    ids = {new_client_id("ord") for _ in range(1000)}
    assert len(ids) == 1000 and all(1 <= len(i) <= 64 for i in ids)


def test_problem_maps_to_the_most_specific_error():
    error = otc.errors.error_from_problem(422, {"code": "insufficient_funds", "detail": "no", "field": None})
    assert isinstance(error, otc.InsufficientFunds) and isinstance(error, otc.Unprocessable)
    assert error.status == 422 and error.code == "insufficient_funds"
    unknown = otc.errors.error_from_problem(418, {"code": "teapot"})
    assert type(unknown) is otc.ApiError and unknown.code == "teapot"
    assert isinstance(otc.errors.error_from_problem(409, {"code": "new_conflict_kind"}), otc.Conflict)
