"""Every kind of bad input gets a 4xx JSON error naming the field, and the server keeps serving."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest

from fixtures_server import encode_image, scene_image
from inference import protocol as P

PNG = encode_image(scene_image(7))
B64 = base64.b64encode(PNG).decode()
HUGE_PNG = encode_image(np.zeros((2100, 2100, 3), np.uint8))  # 4.4 MP > the fixture's 4 MP limit, ~13 kB


def _j(obj) -> bytes:
    return json.dumps(obj).encode()


def _body(**prompt_and_options):
    options = prompt_and_options.pop("options", None)
    obj = {"image": B64, "prompt": prompt_and_options}
    if options is not None:
        obj["options"] = options
    return _j(obj)


CASES = [
    # (id, body, content type, extra headers, expected status, expected field)
    ("malformed json", b'{"image": "abc", "prompt": ', "application/json", {}, 400, "body"),
    ("json array", b"[]", "application/json", {}, 400, "body"),
    ("wrong content type", b"hello", "text/plain", {}, 415, "Content-Type"),
    ("no content type", b"hello", None, {}, 415, "Content-Type"),
    (
        "corrupt image",
        _j({"image": base64.b64encode(b"\x89PNG\r\n\x1a\nnot really").decode(), "prompt": {"points": [[1, 1]]}}),
        "application/json",
        {},
        400,
        "image",
    ),
    (
        "truncated image",
        _j({"image": base64.b64encode(PNG[: len(PNG) // 2]).decode(), "prompt": {"points": [[5, 5]]}}),
        "application/json",
        {},
        400,
        "image",
    ),
    ("not base64", _j({"image": "@@@@", "prompt": {"points": [[1, 1]]}}), "application/json", {}, 400, "image"),
    (
        "huge image",
        _j({"image": base64.b64encode(HUGE_PNG).decode(), "prompt": {"points": [[5, 5]]}}),
        "application/json",
        {},
        413,
        "image",
    ),
    ("empty prompt text", _body(text="   "), "application/json", {}, 400, "prompt.text"),
    ("overlong prompt", _body(text="car. " * 400), "application/json", {}, 400, "prompt.text"),
    ("no prompt", _body(), "application/json", {}, 400, "prompt"),
    ("point outside", _body(points=[[10, 10, 1], [5000, 10, 1]]), "application/json", {}, 400, "prompt.points[1]"),
    ("negative point", _body(points=[[-3, 10]]), "application/json", {}, 400, "prompt.points[0]"),
    ("box outside", _body(box=[400, 300, 500, 400]), "application/json", {}, 400, "prompt.box"),
    ("empty box", _body(box=[50, 50, 50, 80]), "application/json", {}, 400, "prompt.box"),
    (
        "nan threshold literal",
        _j({"image": B64, "prompt": {"points": [[1, 1]]}})[:-1] + b',"options":{"nms_iou":NaN}}',
        "application/json",
        {},
        400,
        "body",
    ),
    (
        "threshold out of range",
        _body(points=[[1, 1]], options={"box_threshold": 1.5}),
        "application/json",
        {},
        400,
        "options.box_threshold",
    ),
    ("nms zero", _body(points=[[1, 1]], options={"nms_iou": 0}), "application/json", {}, 400, "options.nms_iou"),
    (
        "unknown field",
        _j({"image": B64, "prompt": {"points": [[1, 1]]}, "extra": 1}),
        "application/json",
        {},
        400,
        "extra",
    ),
    ("raw image without prompt", PNG, "image/png", {}, 400, P.CUSTOM_ATTRIBUTES_HEADER),
    (
        "raw image bad attributes",
        PNG,
        "image/png",
        {P.CUSTOM_ATTRIBUTES_HEADER: "points=1,2"},
        400,
        P.CUSTOM_ATTRIBUTES_HEADER,
    ),
    (
        "raw image nan in attributes",
        PNG,
        "image/png",
        {P.CUSTOM_ATTRIBUTES_HEADER: '{"prompt":{"points":[[1,1]]},"options":{"text_threshold":NaN}}'},
        400,
        P.CUSTOM_ATTRIBUTES_HEADER,
    ),
    ("empty raw body", b"", "image/jpeg", {P.CUSTOM_ATTRIBUTES_HEADER: '{"prompt":{"points":[[1,1]]}}'}, 400, "image"),
    (
        "bad session id",
        _j({"prompt": {"points": [[1, 1]]}}),
        "application/json",
        {P.SESSION_HEADER: "bad id!"},
        400,
        P.SESSION_HEADER,
    ),
    ("text on classic", _body(text="car."), "application/json", {}, 400, "prompt.text"),
]


@pytest.fixture(scope="module")
def client(classic_server):
    with httpx.Client(base_url=classic_server.url, timeout=30) as c:
        yield c


def _still_serving(c: httpx.Client) -> None:
    assert c.get("/ping").status_code == 200
    ok = c.post("/invocations", content=_body(points=[[96, 120, 1]]), headers={"Content-Type": "application/json"})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("name, body, ctype, headers, status, field", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_4xx_json_naming_the_field(client, name, body, ctype, headers, status, field):
    from inference.backends import backend_class

    if name == "text on classic" and backend_class("classic").supports_text:
        pytest.skip("this classic backend takes text prompts")
    h = dict(headers)
    if ctype is not None:
        h["Content-Type"] = ctype
    r = client.post("/invocations", content=body, headers=h)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    err = r.json()["error"]
    assert err["field"] == field, err
    assert err["message"] and "Traceback" not in r.text
    assert field in r.json()["message"]  # the readable message names the field too


def test_body_over_the_limit_is_refused_without_reading_it(client):
    big = b"0" * (P.MAX_PAYLOAD_BYTES + 1)
    r = client.post("/invocations", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "PayloadTooLarge"
    assert "asynchronous" in r.json()["message"]

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(7):
            yield b"0" * 2**20

    r = client.post("/invocations", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    _still_serving(client)


def test_server_keeps_serving_after_all_bad_inputs(client):
    for _name, body, ctype, headers, _status, _field in CASES:
        client.post("/invocations", content=body, headers={**headers, **({"Content-Type": ctype} if ctype else {})})
    _still_serving(client)
