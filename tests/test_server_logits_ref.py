"""Refinement without re-uploading logits (``return_logits`` -> ``logits_ref``;
``prompt.mask_input_ref``) and sessions a replica did not open (Ray Serve affinity).

The runner in process with the classic backend, then the app's ``server`` and ``sagemaker``
backends against a real server on 127.0.0.1.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random

import numpy as np
import pytest

import inference.protocol as P
from fixtures_server import (
    assert_same_prediction,
    classic_factory,
    encode_image,
    loaded_classic,
    run_server,
    scene_image,
)
from inference.backends.remote import is_kept_logits_placeholder
from inference.images import ImageSource, load_image
from inference.prompts import Point, Prompt

PNG = encode_image(scene_image(11))
B64 = base64.b64encode(PNG).decode()
CLICK = {"points": [[96, 120, 1]]}


def _runner():
    from inference.server.runner import SegmentationRunner

    backend = classic_factory()
    backend.ensure_loaded()
    return SegmentationRunner(backend)


def _run(runner, obj, *, headers=None, scope=""):
    return runner.handle(json.dumps(obj).encode(), content_type="application/json", headers=headers, scope=scope)


def test_kept_logits_refine_exactly_like_the_array():
    runner = _runner()
    first = _run(runner, {"image": B64, "prompt": CLICK, "options": {"return_logits": True}})
    answer = P.decode_response(first.body)
    assert answer.logits_ref and len(answer.prediction.candidates) >= 1
    refine = {"points": [[96, 120, 1], [20, 20, 0]]}
    k = len(answer.prediction.candidates) - 1
    by_array = _run(
        runner,
        {
            "image_id": answer.image_id,
            "prompt": {**refine, "mask_input": P.encode_logits(answer.prediction.candidates[k].low_res_logits)},
            "options": {"multimask": False},
        },
    )
    by_ref = _run(
        runner,
        {
            "prompt": {  # the reference also names the image
                **refine,
                "mask_input_ref": {"ref": answer.logits_ref, "candidate": k},
            },
            "options": {"multimask": False},
        },
    )
    a, b = P.decode_response(by_array.body).prediction, P.decode_response(by_ref.body).prediction
    assert [np.array_equal(x.mask, y.mask) for x, y in zip(a.candidates, b.candidates)] == [True] * len(a.candidates)
    assert [x.score for x in a.candidates] == [y.score for y in b.candidates]
    # logits are kept only when returned, as float16 (what travelled)
    assert P.decode_response(by_ref.body).logits_ref is None
    kept = next(iter(runner.kept_logits._items.values()))[0][1]
    assert all(k.dtype == np.float16 for k in kept)


def test_a_reference_names_only_that_callers_logits_on_that_image():
    runner = _runner()
    first = _run(runner, {"image": B64, "prompt": CLICK, "options": {"return_logits": True}}, scope="alice")
    answer = P.decode_response(first.body)
    ref = {"ref": answer.logits_ref, "candidate": 0}
    other_png = encode_image(scene_image(12))
    _run(runner, {"image": base64.b64encode(other_png).decode(), "prompt": CLICK})
    for obj, scope in (
        ({"prompt": {**CLICK, "mask_input_ref": ref}}, "mallory"),  # another caller
        ({"image_id": P.content_id(other_png), "prompt": {**CLICK, "mask_input_ref": ref}}, "alice"),  # another image
        (
            {"image_id": answer.image_id, "prompt": {**CLICK, "mask_input_ref": {"ref": "feed", "candidate": 0}}},
            "alice",
        ),
    ):
        with pytest.raises(P.ProtocolError) as info:
            _run(runner, obj, scope=scope)
        assert (info.value.status, info.value.code, info.value.field) == (
            404,
            "LogitsNotCached",
            "prompt.mask_input_ref",
        )
    with pytest.raises(P.ProtocolError) as info:
        _run(
            runner,
            {"image_id": answer.image_id, "prompt": {**CLICK, "mask_input_ref": {**ref, "candidate": 99}}},
            scope="alice",
        )
    assert info.value.status == 400 and info.value.field == "prompt.mask_input_ref.candidate"
    assert _run(runner, {"image_id": answer.image_id, "prompt": {**CLICK, "mask_input_ref": ref}}, scope="alice")


@pytest.mark.parametrize(
    "prompt, options, field",
    [
        (
            {**CLICK, "mask_input_ref": {"ref": "abc"}, "mask_input": P.encode_logits(np.zeros((256, 256)))},
            {},
            "prompt.mask_input_ref",
        ),
        ({**CLICK, "mask_input_ref": "abc"}, {}, "prompt.mask_input_ref"),
        ({**CLICK, "mask_input_ref": {"ref": "a b", "candidate": 0}}, {}, "prompt.mask_input_ref.ref"),
        ({**CLICK, "mask_input_ref": {"ref": "abc", "candidate": -1}}, {}, "prompt.mask_input_ref.candidate"),
        ({**CLICK, "mask_input_ref": {"ref": "abc", "candidate": True}}, {}, "prompt.mask_input_ref.candidate"),
        ({**CLICK, "mask_input_ref": {"ref": "abc", "extra": 1}}, {}, "prompt.mask_input_ref.extra"),
    ],
)
def test_bad_references_are_field_named_400s(prompt, options, field):
    with pytest.raises(P.ProtocolError) as info:
        P.decode_request(
            json.dumps({"image_id": "x", "prompt": prompt, "options": options}), content_type="application/json"
        )
    assert info.value.status == 400 and info.value.field == field


def test_the_codec_round_trips_the_new_fields():
    request = P.SegmentRequest(
        prompt=Prompt(points=(Point(x=1, y=2),)),
        image_id="img",
        mask_input_ref=P.MaskInputRef(ref="0123abcd", candidate=2),
    )
    body, ctype, _ = P.encode_request(request)
    assert len(body) < 200
    back = P.decode_request(body, content_type=ctype)
    assert back.mask_input_ref == request.mask_input_ref
    no_image = P.SegmentRequest(
        prompt=Prompt(points=(Point(x=1, y=2),)), mask_input_ref=P.MaskInputRef(ref="ab", candidate=0)
    )
    body, ctype, _ = P.encode_request(no_image)
    assert b'"mask_input_ref":{"ref":"ab"}' in body  # candidate 0 is the default
    assert P.decode_request(body, content_type=ctype).mask_input_ref == no_image.mask_input_ref


# -- sessions a replica did not open (Ray Serve: the router hashed the id to another replica) ----------
def test_a_server_shaped_session_is_adopted_with_its_image_and_then_clicks_need_no_image():
    runner = _runner()
    foreign = hashlib.md5(b"opened elsewhere").hexdigest()  # 32 hex digits, like the ids runners open
    with pytest.raises(P.ProtocolError) as info:  # nothing here yet: the client sends the image again
        _run(runner, {"prompt": CLICK}, headers={P.SESSION_HEADER: foreign})
    assert info.value.code == "ImageNotCached"
    upload = runner.handle(
        PNG,
        content_type="image/png",
        headers={P.REQUEST_HEADER: json.dumps({"options": {"encode_only": True}}), P.SESSION_HEADER: foreign},
    )
    assert upload.headers["X-LangSAM-Image-Cache"] == "miss" and P.NEW_SESSION_HEADER not in upload.headers
    again = _run(runner, {"prompt": CLICK}, headers={P.SESSION_HEADER: foreign})
    assert again.headers["X-LangSAM-Image-Cache"] == "hit"  # (classic has no embedding to reuse)
    # a made-up id of another shape still names nothing, even with an image
    _run(runner, {"image": B64, "prompt": CLICK}, headers={P.SESSION_HEADER: "my-session"})
    with pytest.raises(P.ProtocolError):
        _run(runner, {"prompt": CLICK}, headers={P.SESSION_HEADER: "my-session"})


def test_encode_only_opens_a_session():
    runner = _runner()
    opened = runner.handle(
        PNG,
        content_type="image/png",
        headers={P.REQUEST_HEADER: json.dumps({"options": {"encode_only": True}}), P.SESSION_HEADER: P.NEW_SESSION},
    )
    session = opened.headers[P.NEW_SESSION_HEADER].split(";")[0]
    assert P.is_content_id(session)
    click = _run(runner, {"prompt": CLICK}, headers={P.SESSION_HEADER: session})
    assert click.headers["X-LangSAM-Image-Cache"] == "hit"


# -- the app's remote backends ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    from inference.server.config import ServerConfig

    with run_server(backend_factory=classic_factory, config=ServerConfig(timeout_s=30.0)) as handle:
        yield handle


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "photo.png"
    path.write_bytes(encode_image(scene_image(21)))
    return path


def _refine_with(backend, photo):
    """A first click through ``backend``, then the refinement click on its best candidate; with
    the real logits of that candidate (computed here, as float16 like the server keeps them)."""
    image = load_image(photo)
    source = ImageSource(path=str(photo))
    key = backend.encode(image, source=source)
    click = Prompt(points=(Point(x=96, y=120),))
    first = backend.predict(image, click, image_key=key, source=source)
    best = max(range(len(first.candidates)), key=lambda i: first.candidates[i].score)  # as the app picks it
    refine = Prompt(
        points=(Point(x=96, y=120), Point(x=20, y=20, positive=False)),
        mask_input=first.candidates[best].low_res_logits,
        multimask=False,
    )
    logits = loaded_classic().predict(image, click).candidates[best].low_res_logits
    return image, key, source, refine, logits.astype(np.float16).astype(np.float32)


def test_the_server_backend_refines_by_reference(server, photo):
    from inference.backends.registry import create_backend

    backend = create_backend("server", url=server.url)
    backend.ensure_loaded()
    assert backend.logits_by_ref is True and backend.keeps_logits is True  # /info advertises both
    image, key, source, refine, logits = _refine_with(backend, photo)
    assert is_kept_logits_placeholder(refine.mask_input)  # kept on the server, not sent back
    remote = backend.predict(image, refine, image_key=key, source=source)
    assert backend.last_bytes_sent <= 300, backend.last_bytes_sent
    local = loaded_classic()
    assert_same_prediction(remote, local.predict(image, dataclasses.replace(refine, mask_input=logits)))
    # a second refinement on the refined answer: by reference again
    again = dataclasses.replace(refine, mask_input=remote.candidates[0].low_res_logits)
    second = backend.predict(image, again, image_key=key, source=source)
    assert backend.last_bytes_sent <= 300 and backend.notice == ""
    # logits the server no longer has (evicted, restarted, another replica): made again by
    # replaying the click that made them, silently, and the answer is the same
    server.worker.runner.kept_logits.clear()  # two levels, both replayed
    assert_same_prediction(backend.predict(image, again, image_key=key, source=source), second)
    server.worker.runner.kept_logits.clear()
    remade = backend.predict(image, refine, image_key=key, source=source)
    assert backend.notice == "" and backend.last_bytes_sent <= 300
    assert_same_prediction(remade, remote)
    # and when the click that made them is forgotten too: answered from the points alone, said once
    server.worker.runner.kept_logits.clear()
    backend._kept.clear()
    alone = backend.predict(image, refine, image_key=key, source=source)
    assert "points alone" in backend.notice and backend.last_bytes_sent <= 300
    assert_same_prediction(alone, local.predict(image, dataclasses.replace(refine, mask_input=None)))
    backend.predict(image, Prompt(points=(Point(x=50, y=50),)), image_key=key, source=source)
    assert backend.notice == ""  # said for that click only


def test_logits_travel_as_arrays_to_a_server_from_before_keep_logits(photo, monkeypatch):
    """A server that knows mask_input_ref but not options.keep_logits (the release before): the
    backend learns it from the 400 naming the field, then gets the arrays back and refines by
    reference; logits that server lost are sent as the array once."""
    import inference.protocol_requests as requests
    import inference.server.runner as runner
    from inference.backends.registry import create_backend
    from inference.server.config import ServerConfig

    monkeypatch.setattr(requests, "_OPTION_KEYS", requests._OPTION_KEYS - {"keep_logits"})
    monkeypatch.setattr(runner, "RUNNER_FEATURES", ("mask_input_ref",))
    with run_server(backend_factory=classic_factory, config=ServerConfig(timeout_s=30.0)) as older:
        backend = create_backend("server", url=older.url)
        backend.ensure_loaded()
        assert backend.logits_by_ref is True and backend.keeps_logits is False  # what /info says
        backend.keeps_logits = None  # as with an endpoint (no /info): found out by trying
        image, key, source, refine, logits = _refine_with(backend, photo)
        assert backend.keeps_logits is False  # the 400 on options.keep_logits taught it
        assert not is_kept_logits_placeholder(refine.mask_input)  # the real array came back
        assert np.array_equal(refine.mask_input, logits)
        remote = backend.predict(image, refine, image_key=key, source=source)
        assert backend.last_bytes_sent <= 300, backend.last_bytes_sent  # by reference all the same
        older.worker.runner.kept_logits.clear()
        resent = backend.predict(image, refine, image_key=key, source=source)
        assert backend.last_bytes_sent > 100_000  # the array once, silently, with the same answer
        assert_same_prediction(resent, remote)


def test_the_sagemaker_backend_refines_by_reference_within_its_session(server, photo):
    from desktop_app.core import backend_choices  # noqa: F401 - registers the sagemaker provider
    from inference.backends.registry import create_backend

    backend = create_backend(
        "sagemaker",
        endpoint="langsam-local",
        endpoint_url=server.url,
        region="eu-west-1",
        access_key_id="AKIDEXAMPLE",
        secret_access_key="not-a-secret",
    )
    backend.ensure_loaded()
    assert backend.keeps_logits is True and backend.mask_input_size() == 256  # the encode-only answer said
    image, key, source, refine, logits = _refine_with(backend, photo)
    assert backend._sessions.get(key)  # the upload opened a session; clicks name it
    assert is_kept_logits_placeholder(refine.mask_input)
    remote = backend.predict(image, refine, image_key=key, source=source)
    assert backend.logits_by_ref is True and backend.last_bytes_sent <= 300, backend.last_bytes_sent
    assert_same_prediction(remote, loaded_classic().predict(image, dataclasses.replace(refine, mask_input=logits)))
    # another replica / a restart: the session is unknown there -> the image once under the same id
    server.worker.runner.images.clear()
    server.worker.runner._sessions.clear()
    session = backend._sessions[key]
    again = backend.predict(image, Prompt(points=(Point(x=96, y=120),)), image_key=key, source=source)
    assert backend._sessions[key] == session and again.candidates


# -- Ray Serve: session ids the consistent-hash router maps back to the replica that opened them -----
def _hash64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def _route(replicas: list[str], key: str, nodes: int = 100) -> str:
    """Ray's ConsistentHashRouter lookup: the first virtual node whose hash is greater than the key's."""
    import bisect

    ring = sorted((_hash64(f"{r}:{i}".encode()), r) for r in replicas for i in range(nodes))
    j = bisect.bisect_right([h for h, _ in ring], _hash64(key.encode()))
    return ring[j % len(ring)][1]


def test_ray_session_ids_route_back_to_the_replica_that_opened_them():
    from inference.ray_serve import affinity_session_ids

    replicas = ["a1b2c3d4", "e5f6a7b8", "c9d0e1f2"]
    rnd = random.Random(20261205)  # seeded draws: the outcome is fixed, not a matter of luck

    def token_hex(n: int) -> str:
        return rnd.getrandbits(8 * n).to_bytes(n, "big").hex()

    for me in replicas:
        new_id = affinity_session_ids(me, num_virtual_nodes=100, hash_bytes=_hash64, token_hex=token_hex)
        ids = [new_id() for _ in range(100)]
        assert all(P.is_content_id(i) for i in ids) and len(set(ids)) == 100
        away = sum(_route(replicas, i) != me for i in ids)
        # Only this replica's ring is known: on this ring one node of e5f6a7b8 has another replica's
        # node 8 % of a window below it, so ids drawn for that node's window go elsewhere (~1 per
        # 100 ids on average); a stray id is adopted by the replica that gets it.
        assert away <= 3, away
    # plain random ids land anywhere
    assert sum(_route(replicas, hashlib.md5(bytes([i])).hexdigest()) == replicas[0] for i in range(90)) < 60


# -- with SAM 2 (random weights), where the previous logits change the answer -----------------------
def test_sam2_refinement_by_reference_equals_local_and_lost_logits_are_made_again(
    tiny_sam2_checkpoint, sam2_backend, tmp_path
):
    from PIL import Image

    from fixtures_models import make_test_image
    from inference.backends.registry import create_backend
    from inference.server.config import ServerConfig

    def factory():
        return create_backend("sam2", device="cpu", model="sam2.1_hiera_tiny", checkpoint=tiny_sam2_checkpoint)

    def iou(a, b) -> float:
        return float((a & b).sum() / max(1, (a | b).sum()))

    image = make_test_image(5, height=96, width=128)
    path = tmp_path / "five.png"
    Image.fromarray(image).save(path)
    source = ImageSource(path=str(path))
    click = Prompt(points=(Point(x=40, y=30),))
    points = (Point(x=40, y=30), Point(x=100, y=80, positive=False))
    local_first = sam2_backend.predict(image, click)
    best = max(range(len(local_first.candidates)), key=lambda i: local_first.candidates[i].score)
    kept = local_first.candidates[best].low_res_logits.astype(np.float16).astype(np.float32)  # as kept
    refined = sam2_backend.predict(image, Prompt(points=points, mask_input=kept, multimask=False)).candidates[0].mask
    alone = sam2_backend.predict(image, Prompt(points=points, multimask=False)).candidates[0].mask
    assert iou(refined, alone) < 0.95  # the previous logits matter for this click

    with run_server(backend_factory=factory, config=ServerConfig(timeout_s=120.0)) as server:
        backend = create_backend("server", url=server.url)
        backend.ensure_loaded()
        key = backend.encode(image, source=source)
        first = backend.predict(image, click, image_key=key, source=source)
        assert all(is_kept_logits_placeholder(c.low_res_logits) for c in first.candidates)
        refine = Prompt(points=points, mask_input=first.candidates[best].low_res_logits, multimask=False)

        answer = backend.predict(image, refine, image_key=key, source=source).candidates[0].mask
        assert backend.last_bytes_sent <= 300 and iou(answer, refined) > 0.99

        server.worker.runner.kept_logits.clear()  # lost on the server: the first click is replayed
        answer = backend.predict(image, refine, image_key=key, source=source).candidates[0].mask
        assert backend.notice == "" and iou(answer, refined) > 0.99

        server.worker.runner.kept_logits.clear()  # ... and forgotten here too: the points alone, said
        backend._kept.clear()
        answer = backend.predict(image, refine, image_key=key, source=source).candidates[0].mask
        assert "points alone" in backend.notice and iou(answer, alone) > 0.99
